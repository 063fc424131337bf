//! Shared helpers for lifeboat's integration tests (`mod common;` in each test file).
//!
//! * [`Garage`]: a throw-away single-node garage S3 server on 127.0.0.1 (install it with
//!   `./tests/run.sh`, which sets `LIFEBOAT_GARAGE_BIN`).
//! * [`lifeboat`]: a `Command` for the lifeboat binary under test; [`http`]: one plain HTTP/1.1
//!   request to 127.0.0.1 with a bearer token (the coordinator's API).
//! * [`restic_bin`]: the restic binary, for interop checks.
//! * [`make_dataset`], [`tree_digest`], [`assert_same_tree`]: deterministic test data and
//!   byte-identical tree comparison.
//! * [`standin::StandIn`]: a stand-in coordinator (HTTP on 127.0.0.1) for agent tests.
//! * [`drill`]: a real coordinator process with agents for the end-to-end drill tests, and a
//!   download-capped TCP relay ([`drill::SlowLink`]).
//! * [`postgres::Postgres`]: a throw-away PostgreSQL server on 127.0.0.1 (`initdb` + `pg_ctl`
//!   from the machine's `postgresql` package, which `./tests/run.sh` installs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod drill;
pub mod postgres;
pub mod smtp_sink;
pub mod standin;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// garage
// ---------------------------------------------------------------------------------------------

/// Fixed test credentials imported into every garage instance
/// (key id = "GK" + 24 hex, secret = 64 hex).
pub const GARAGE_ACCESS_KEY_ID: &str = "GK0123456789abcdef01234567";
pub const GARAGE_SECRET_ACCESS_KEY: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const GARAGE_BUCKET: &str = "lifeboat-test";
pub const GARAGE_REGION: &str = "us-east-1";

/// How long to wait for garage to come up (server start, and S3 readiness).
const GARAGE_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A single-node garage server (replication factor 1, sqlite metadata) in a fresh temporary
/// directory, listening on free 127.0.0.1 ports. The bucket [`GARAGE_BUCKET`] exists and the
/// key [`GARAGE_ACCESS_KEY_ID`] may read, write and own it. The server is killed on drop and its
/// directory removed.
pub struct Garage {
    /// `http://127.0.0.1:PORT` (S3 API, path-style requests).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub s3_port: u16,
    pub rpc_port: u16,
    pub admin_port: u16,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    // Last field: removed after the server has been killed (Drop runs before field drops).
    dir: tempfile::TempDir,
}

impl Garage {
    /// Start a fresh garage server and set up layout, bucket and key. Panics (with the garage
    /// log tail) when anything fails.
    pub fn start() -> Garage {
        let bin = garage_bin();
        // Ports are picked by binding port 0 and released before garage binds them, so another
        // process may grab one in between. Retry with new ports when the server dies at start.
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let mut garage = Garage::configure(bin.clone());
            garage.spawn();
            match garage.wait_until_up() {
                Ok(()) => {
                    garage.provision();
                    garage.wait_s3_ready();
                    return garage;
                }
                Err(e) if garage.exited() => {
                    // Most likely a port clash: try again with new ports.
                    last_err = format!("{e}\n--- garage log tail ---\n{}", garage.log_tail(40));
                }
                Err(e) => garage.fail(&e),
            }
        }
        panic!("garage did not start after 3 attempts: {last_err}");
    }

    /// Write garage.toml into a fresh temporary directory (server not started).
    fn configure(bin: PathBuf) -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-garage-")
            .tempdir()
            .expect("create garage temp dir");
        let [rpc_port, s3_port, admin_port] = free_ports::<3>();
        let config = dir.path().join("garage.toml");
        let log = dir.path().join("garage.log");
        let meta = dir.path().join("meta");
        let data = dir.path().join("data");
        let toml = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{GARAGE_REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
            meta = meta.display(),
            data = data.display(),
            rpc_secret = random_hex(32),
            admin_token = random_hex(16),
        );
        fs::write(&config, toml).expect("write garage.toml");
        Garage {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: GARAGE_REGION.to_string(),
            bucket: GARAGE_BUCKET.to_string(),
            access_key_id: GARAGE_ACCESS_KEY_ID.to_string(),
            secret_access_key: GARAGE_SECRET_ACCESS_KEY.to_string(),
            s3_port,
            rpc_port,
            admin_port,
            bin,
            config,
            log,
            child: None,
            dir,
        }
    }

    /// The temporary directory holding garage.toml, garage.log, meta/ and data/.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the server log (appended to across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the server process is currently running (as far as we know).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stop the server abruptly (SIGKILL) and wait for it: open connections are reset at once,
    /// as when a server or network dies in the middle of a transfer. Data already written is
    /// kept (a killed process loses nothing the kernel has). The S3 endpoint refuses
    /// connections until [`Garage::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server gracefully (SIGTERM; garage then waits up to 10 s for open S3
    /// connections, e.g. an idle keep-alive connection of a client), SIGKILL after 15 s.
    pub fn stop_graceful(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            // No libc (unsafe is forbidden): use the shell's kill builtin.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -TERM {}", child.id()))
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Start the server again (after [`Garage::stop`]; stops it first if running) with the same ports,
    /// config and data, and wait until S3 requests are served.
    pub fn restart(&mut self) {
        self.stop();
        // The ports were just released by the old process; retry briefly if one is still busy.
        let deadline = Instant::now() + GARAGE_START_TIMEOUT;
        loop {
            self.spawn();
            match self.wait_until_up() {
                Ok(()) => break,
                Err(e) if self.exited() && Instant::now() < deadline => {
                    eprintln!("garage restart failed ({e}), retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => self.fail(&format!("restart: {e}")),
            }
        }
        self.wait_s3_ready();
    }

    /// Run `garage -c garage.toml ARGS…` (the CLI talks to the server over RPC).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()))
    }

    /// Like [`Garage::cli`] but panics (with output and log tail) when the command fails;
    /// returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        if !out.status.success() {
            self.fail(&format!(
                "`garage {}` failed ({}):\nstdout: {}\nstderr: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "garage setup failed: {msg}\n--- garage log tail ({}) ---\n{}",
            self.log.display(),
            self.log_tail(40)
        );
    }

    fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open garage log");
        let log2 = log.try_clone().expect("clone garage log handle");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} server: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Wait until `garage status` succeeds (the RPC server answers).
    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + GARAGE_START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("garage server exited at start: {status}"));
            }
            let out = self.cli(&["status"]);
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`garage status` still failing after {GARAGE_START_TIMEOUT:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Layout (1 node, zone dc1, 1G), bucket, fixed key, permissions.
    fn provision(&mut self) {
        let status = self.cli_ok(&["status"]);
        let node = status
            .lines()
            .find(|l| l.contains("NO ROLE"))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)
            .unwrap_or_else(|| self.fail(&format!("no \"NO ROLE\" node in status:\n{status}")));
        self.cli_ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        self.cli_ok(&["layout", "apply", "--version", "1"]);
        self.cli_ok(&["bucket", "create", GARAGE_BUCKET]);
        self.cli_ok(&[
            "key",
            "import",
            "--yes",
            "-n",
            GARAGE_BUCKET,
            GARAGE_ACCESS_KEY_ID,
            GARAGE_SECRET_ACCESS_KEY,
        ]);
        self.cli_ok(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            GARAGE_BUCKET,
            "--key",
            GARAGE_BUCKET,
        ]);
    }

    /// Wait until the admin `/health` endpoint reports a usable cluster and the S3 port answers
    /// HTTP (an unsigned request gets a 4xx from garage; 5xx or no answer means not ready).
    fn wait_s3_ready(&mut self) {
        let deadline = Instant::now() + GARAGE_START_TIMEOUT;
        loop {
            if self.exited() {
                self.fail("garage server exited while waiting for S3 readiness");
            }
            let health = http_status(self.admin_port, "/health");
            let s3 = http_status(self.s3_port, &format!("/{GARAGE_BUCKET}"));
            let ok =
                matches!(health, Some(200)) && matches!(s3, Some(c) if (200..500).contains(&c));
            if ok {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "S3 not ready after {GARAGE_START_TIMEOUT:?} (admin /health: {health:?}, s3: {s3:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The garage binary: `$LIFEBOAT_GARAGE_BIN`, else `garage` on `PATH`. Panics when neither.
pub fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LIFEBOAT_GARAGE_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "LIFEBOAT_GARAGE_BIN={} is not an executable file: run ./tests/run.sh (it installs \
             garage 2.5.0 into ~/.cache/lifeboat) or fix LIFEBOAT_GARAGE_BIN",
            p.display()
        );
        return p;
    }
    // Where ./tests/run.sh installs it.
    let cache = std::env::var_os("LIFEBOAT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lifeboat")));
    if let Some(p) = cache
        .map(|c| c.join("garage/bin/garage"))
        .filter(|p| is_executable(p))
    {
        return p;
    }
    find_in_path("garage").unwrap_or_else(|| {
        panic!(
            "garage not found: run ./tests/run.sh (it installs garage 2.5.0 into \
             ~/.cache/lifeboat) or set LIFEBOAT_GARAGE_BIN"
        )
    })
}

/// `N` distinct free TCP ports on 127.0.0.1 (all listeners held until every port is chosen).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr().expect("local_addr").port();
    }
    ports
}

/// `n` random bytes from /dev/urandom, hex-encoded (2n characters).
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    hex::encode(buf)
}

/// Status code of a plain `GET path` on 127.0.0.1:port, or None when there is no HTTP answer.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match s.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => len += k,
        }
    }
    // "HTTP/1.1 200 OK"
    let line = std::str::from_utf8(&head[..len]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 30 s for a coordinator on 127.0.0.1:`port` to answer `/readyz` with 200.
pub fn wait_ready(port: u16) {
    wait_until(
        Duration::from_secs(30),
        "the coordinator to be ready",
        || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/readyz", "", "").0 == 200
        },
    );
}

/// Polls `done` every 100 ms; panics after `limit`, naming `what` it waited for.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A request to 127.0.0.1:port with `Authorization: Bearer <bearer>` and a JSON `body`; returns
/// the status code (0 when there is no HTTP answer) and the response body.
pub fn http(port: u16, method: &str, path: &str, bearer: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

// ---------------------------------------------------------------------------------------------
// binaries
// ---------------------------------------------------------------------------------------------

/// A `Command` for the lifeboat binary under test (`RUST_LOG` unset, `NO_COLOR=1`).
pub fn lifeboat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// The restic binary on `PATH`. Panics when missing.
pub fn restic_bin() -> PathBuf {
    find_in_path("restic").unwrap_or_else(|| {
        panic!("restic not found: run ./tests/run.sh or `apt-get install restic`")
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// directory trees
// ---------------------------------------------------------------------------------------------

/// Describe the tree under `dir` (not including `dir` itself): relative path (with `/`
/// separators) → `"dir"`, `"file <len> <sha256>"` or `"symlink -> <target>"` (symlinks are not
/// followed). Other file types are recorded as `"other"`.
pub fn tree_digest(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, cur: &Path, out: &mut BTreeMap<String, String>) {
        let entries =
            fs::read_dir(cur).unwrap_or_else(|e| panic!("read_dir {}: {e}", cur.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read_dir {}: {e}", cur.display()));
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("path under root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = fs::read_link(&path)
                    .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()));
                out.insert(rel, format!("symlink -> {}", target.to_string_lossy()));
            } else if ft.is_dir() {
                out.insert(rel, "dir".to_string());
                walk(root, &path, out);
            } else if ft.is_file() {
                let mut f = fs::File::open(&path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                let mut len = 0u64;
                loop {
                    let k = f
                        .read(&mut buf)
                        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                    if k == 0 {
                        break;
                    }
                    len += k as u64;
                    hasher.update(&buf[..k]);
                }
                out.insert(
                    rel,
                    format!("file {len} {}", hex::encode(hasher.finalize())),
                );
            } else {
                out.insert(rel, "other".to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Panic (listing the differing entries) unless the trees under `a` and `b` have the same
/// paths, kinds, file contents and symlink targets.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let da = tree_digest(a);
    let db = tree_digest(b);
    if da == db {
        return;
    }
    let mut diffs = Vec::new();
    for (k, va) in &da {
        match db.get(k) {
            None => diffs.push(format!("  only in a: {k} ({va})")),
            Some(vb) if vb != va => {
                diffs.push(format!("  differs:   {k}\n    a: {va}\n    b: {vb}"))
            }
            Some(_) => {}
        }
    }
    for (k, vb) in &db {
        if !da.contains_key(k) {
            diffs.push(format!("  only in b: {k} ({vb})"));
        }
    }
    let total = diffs.len();
    diffs.truncate(50);
    panic!(
        "trees differ ({total} entries):\n a = {}\n b = {}\n{}{}",
        a.display(),
        b.display(),
        diffs.join("\n"),
        if total > 50 { "\n  …" } else { "" }
    );
}

// ---------------------------------------------------------------------------------------------
// test data
// ---------------------------------------------------------------------------------------------

/// Tiny deterministic PRNG (xorshift64*).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// `n` bytes of compressible text (numbered lines drawn from a small vocabulary).
pub fn text_bytes(seed: u64, n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "backup",
        "restore",
        "snapshot",
        "policy",
        "retention",
        "object",
        "storage",
        "lifeboat",
        "disaster",
        "recovery",
        "RPO",
        "RTO",
        "evidence",
        "bucket",
        "index",
        "pack",
        "chunk",
        "tree",
        "blob",
        "Überweisung",
        "财务",
        "café",
    ];
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(n + 128);
    let mut line = 0u64;
    while out.len() < n {
        line += 1;
        out.extend_from_slice(format!("{line:06}:").as_bytes());
        for _ in 0..(4 + rng.next_u64() % 10) {
            out.push(b' ');
            out.extend_from_slice(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize].as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(n);
    out
}

/// Fill `dir` (created if needed) with a deterministic data set of about 5 MiB: nested
/// directories, compressible text and pseudo-random bytes, a duplicated file, empty files, an
/// empty directory, symlinks, unicode names and names with spaces. Same bytes on every call.
pub fn make_dataset(dir: &Path) {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    let w = |rel: &str, data: &[u8]| {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    };
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));

    let mut rng = XorShift::new(0x11fe_b0a7);
    let random = rng.bytes(2 * MIB);
    w("data/random.bin", &random);
    w("data/copy-of-random.bin", &random); // deduplicated by the repository
    w("data/nested/deep/er/blob.bin", &rng.bytes(300 * KIB + 17));
    let mut mixed = text_bytes(2, 512 * KIB);
    mixed.extend_from_slice(&rng.bytes(512 * KIB));
    w("data/mixed.dat", &mixed);
    w("docs/readme.txt", &text_bytes(1, 768 * KIB));
    w("docs/notes.md", b"# Notes\n\nA small markdown file.\n");
    for i in 0..40u64 {
        let size = (rng.next_u64() % (8 * KIB as u64)) as usize;
        w(
            &format!("small/file-{i:02}.txt"),
            &text_bytes(100 + i, size),
        );
    }
    w("empty.txt", b"");
    w("data/nested/empty.bin", b"");
    fs::create_dir_all(dir.join("empty-dir")).expect("mkdir empty-dir");
    w("财务/报表-2026年.txt", &text_bytes(3, 20 * KIB));
    w("naïve café.txt", "crème brûlée, naïve café\n".as_bytes());
    w(
        "with spaces/a file with spaces.txt",
        b"spaces in the name\n",
    );
    std::os::unix::fs::symlink("docs/readme.txt", dir.join("link-to-readme"))
        .expect("symlink link-to-readme");
    std::os::unix::fs::symlink("../财务", dir.join("data/link-to-dir"))
        .expect("symlink data/link-to-dir");
}

/// The `[tiers.TT]` and `[sites.branch]` entries the test policies share: a test tier with
/// these targets and a branch site in Asia/Shanghai.
pub fn test_tier_and_site(
    rpo: &str,
    copies: u8,
    offsite: u8,
    check_every: &str,
    read_data_window: &str,
) -> String {
    format!(
        r#"[tiers.TT]
name = "Test tier"
rpo = "{rpo}"
rto-it = "24h"
rto-business = "48h"
copies = {copies}
media = 1
offsite = {offsite}
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "{check_every}"
read-data-window = "{read_data_window}"

[sites.branch]
name = "Test branch"
role = "branch"
region = "test-region"
timezone = "Asia/Shanghai"
"#
    )
}
