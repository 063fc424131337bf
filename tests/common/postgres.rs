//! A throw-away PostgreSQL server for tests: `initdb` into a fresh temporary directory, started
//! with `pg_ctl` on 127.0.0.1 and a free port (its unix socket directory inside the temporary
//! directory too), with a database `lifeboat` created, trust authentication for user `postgres`.
//! Stopped on drop, also when the test panics.
//!
//! The server binaries come from the machine (`apt-get install postgresql`; `./tests/run.sh`
//! installs it): `$LIFEBOAT_PG_BIN` (a directory), else the directory of `initdb` on `PATH` or in
//! /usr/local/bin (symlinks resolved), else the newest `/usr/lib/postgresql/*/bin`. Missing
//! binaries fail the test with that advice; they never skip it.
//!
//! `initdb` and `postgres` refuse to run as root, and tests run as root in CI: then every server
//! command runs as the `postgres` user if it exists, else `nobody`, through `runuser` (or `su`),
//! and the temporary directory is handed to that user.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The database created in every server.
pub const DATABASE: &str = "lifeboat";
/// The superuser (trust authentication on 127.0.0.1 and the socket).
pub const USER: &str = "postgres";

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found: install them \
     with `apt-get install postgresql` (./tests/run.sh does), or set LIFEBOAT_PG_BIN to the \
     directory holding initdb and pg_ctl";

/// A running throw-away server (see the module docs).
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    run_as: Option<RunAs>,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    running: bool,
    // Last field: removed after the server was stopped (Drop runs before field drops).
    dir: tempfile::TempDir,
}

/// How to run a server command as an unprivileged user when the tests run as root.
#[derive(Clone)]
struct RunAs {
    user: String,
    /// `runuser`, else `su`.
    runuser: Option<PathBuf>,
}

impl Postgres {
    /// Initialise and start a fresh server; panics with the server log when anything fails.
    pub fn start() -> Postgres {
        let bin = pg_bin_dir();
        let run_as = if running_as_root() {
            Some(RunAs::find())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        let log = dir.path().join("postgres.log");
        fs::create_dir(&socket_dir).expect("create the socket directory");
        if let Some(run_as) = &run_as {
            run_as.take_ownership(dir.path());
        }
        let mut pg = Postgres {
            port: 0,
            bin,
            run_as,
            data,
            socket_dir,
            log,
            running: false,
            dir,
        };
        pg.initdb();
        // A free port is found by binding port 0 and released before the server binds it, so
        // another process may take it in between: retry with a new one.
        let mut last = String::new();
        for _ in 0..3 {
            pg.port = free_port();
            match pg.try_start() {
                Ok(()) => {
                    pg.createdb();
                    return pg;
                }
                Err(e) => last = e,
            }
        }
        pg.fail(&format!(
            "the server did not start after 3 attempts: {last}"
        ));
    }

    /// `postgres://postgres@127.0.0.1:PORT/lifeboat`
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A URL of the same server and database with a password in it (trust authentication
    /// ignores it): for checking that the password reaches no error message.
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://{USER}:{password}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop the server at once (`pg_ctl stop -m immediate`): every connection is cut, as when
    /// the database host dies. [`Postgres::restart`] brings it back on the same port with its data.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let out = self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
        if !out.status.success() {
            self.kill_postmaster();
        }
    }

    /// Start the server again after [`Postgres::stop`], same port and data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.try_start() {
            self.fail(&format!("restart: {e}"));
        }
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn initdb(&self) {
        let data = self.data.display().to_string();
        let out = self.server_command(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        if !out.status.success() {
            panic!(
                "initdb failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let options = format!(
            // fsync=off is safe here: an immediate stop kills processes, not the kernel, so
            // every write already made survives it (synchronous_commit=off would not: commits
            // still in the WAL writer's buffer would be lost on [`Postgres::stop`]).
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=50",
            self.port,
            self.socket_dir.display()
        );
        let out = self.pg_ctl(&[
            "-l",
            &self.log.display().to_string(),
            "-o",
            &options,
            "-w",
            "-t",
            "30",
            "start",
        ]);
        if out.status.success() {
            self.running = true;
            Ok(())
        } else {
            // pg_ctl may give up while the postmaster still runs: make sure it is gone.
            self.kill_postmaster();
            Err(format!(
                "pg_ctl start failed ({}): {}\n--- server log tail ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(20)
            ))
        }
    }

    fn createdb(&self) {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                DATABASE,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run createdb: {e}"));
        if !out.status.success() {
            self.fail(&format!(
                "createdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data.display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        self.server_command("pg_ctl", &all)
    }

    /// Runs a server program from the bin directory, as the unprivileged user when root.
    fn server_command(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut cmd = match &self.run_as {
            None => {
                let mut c = Command::new(&program);
                c.args(args);
                c
            }
            Some(run_as) => run_as.command(&program, args),
        };
        cmd.stdin(Stdio::null())
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }

    /// Last resort when `pg_ctl stop` fails: SIGKILL the postmaster named in postmaster.pid.
    fn kill_postmaster(&self) {
        let pid = fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().map(str::trim).map(str::to_string))
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "PostgreSQL test server: {msg}\n--- server log tail ({}) ---\n{}",
            self.log.display(),
            self.log_tail(40)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RunAs {
    /// `postgres` if that user exists, else `nobody`; `runuser` if found, else `su`.
    fn find() -> RunAs {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let has = |u: &str| passwd.lines().any(|l| l.split(':').next() == Some(u));
        let user = if has("postgres") {
            "postgres"
        } else {
            "nobody"
        };
        assert!(
            has(user),
            "running as root, and neither a `postgres` nor a `nobody` user exists to run the \
             PostgreSQL server as (initdb refuses root): install postgresql, which creates one"
        );
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        RunAs {
            user: user.to_string(),
            runuser,
        }
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        match &self.runuser {
            Some(runuser) => {
                let mut c = Command::new(runuser);
                c.args(["-u", &self.user, "--"]).arg(program).args(args);
                c
            }
            None => {
                let mut line = shell_quote(&program.display().to_string());
                for a in args {
                    line.push(' ');
                    line.push_str(&shell_quote(a));
                }
                let mut c = Command::new("su");
                c.args(["-s", "/bin/sh", &self.user, "-c", &format!("exec {line}")]);
                c
            }
        }
    }

    /// Hand `dir` (recursively) to the user; its parents must let the user through (the system
    /// temporary directory does).
    fn take_ownership(&self, dir: &Path) {
        let status = Command::new("chown")
            .args(["-R", &format!("{}:", self.user)])
            .arg(dir)
            .status()
            .unwrap_or_else(|e| panic!("run chown: {e}"));
        assert!(
            status.success(),
            "chown {} to {} failed",
            dir.display(),
            self.user
        );
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The directory holding initdb, pg_ctl and createdb; panics with install advice when missing.
pub fn pg_bin_dir() -> PathBuf {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "createdb"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    if let Some(dir) = std::env::var_os("LIFEBOAT_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            has_tools(&dir),
            "LIFEBOAT_PG_BIN={} holds no initdb, pg_ctl and createdb. {INSTALL_HINT}",
            dir.display()
        );
        return dir;
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/local/bin"));
    for d in dirs {
        // Debian links only some tools into PATH: follow initdb to its real directory.
        if let Ok(real) = fs::canonicalize(d.join("initdb"))
            && let Some(parent) = real.parent()
            && has_tools(parent)
        {
            return parent.to_path_buf();
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}
