//! Helpers for the end-to-end drill tests (`tests/drill_e2e.rs`, `tests/drill_faults.rs`): a
//! real coordinator process on SQLite with its policy directory, enrolled agent processes,
//! JSON calls to its API, the `lifeboat drill` CLI on its database, and [`SlowLink`], a TCP
//! relay that caps the download rate (to make a restore last long enough to be cut short).
//!
//! No mocks: every process is the real binary; the relay only slows bytes down.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{free_port, http, lifeboat, wait_ready};

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// A timestamp field of an API answer or a record.
pub fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap()
}

/// A coordinator under `<root>/coordinator`: `coordinator.toml` (SQLite, a fast sweep and
/// drill tick), `policies/policy.toml`, and the process once [`Coordinator::start`]ed.
pub struct Coordinator {
    pub dir: PathBuf,
    pub port: u16,
    process: Option<Running>,
}

impl Coordinator {
    /// Writes the configuration and the policy, and checks the policy with `lifeboat policy
    /// check` (a plan the validator refuses fails here, with its report).
    pub fn configure(root: &Path, policy: &str, agent_lost_after: &str) -> Coordinator {
        let dir = root.join("coordinator");
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(dir.join("policies/policy.toml"), policy).unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("coordinator.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\npolicy-dir = \"{policies}\"\nsweep-every = \"2s\"\n\n[drills]\ntick-every = \"1s\"\nagent-lost-after = \"{agent_lost_after}\"\n",
                db = dir.join("coordinator.db").display(),
                policies = dir.join("policies").display(),
            ),
        )
        .unwrap();
        let check = lifeboat()
            .args(["policy", "check", dir.join("policies").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        Coordinator {
            dir,
            port,
            process: None,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("coordinator.toml")
    }

    pub fn policies(&self) -> PathBuf {
        self.dir.join("policies")
    }

    /// `lifeboat coordinator --config … ARGS` with `stdin`; its stdout, trimmed.
    pub fn admin(&self, args: &[&str], stdin: &str) -> String {
        coordinator_cli(&self.config(), args, stdin)
    }

    /// Adds a user with `role` and `password`.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        self.admin(&["user", "add", "--name", name, "--role", role], password);
    }

    /// Starts the coordinator (log in `coordinator.log`) and waits until it is ready.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("coordinator.log")).unwrap();
        self.process = Some(Running(
            lifeboat()
                .args([
                    "coordinator",
                    "--config",
                    self.config().to_str().unwrap(),
                    "--log",
                    "info",
                ])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        ));
        wait_ready(self.port);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("coordinator.log")).unwrap_or_default()
    }

    /// A session token of `name`.
    pub fn login(&self, name: &str, password: &str) -> String {
        let (code, body) = self.call(
            "POST",
            "/api/v1/login",
            "",
            &json!({ "name": name, "password": password }),
        );
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// A JSON call to the API; the status and the body (a JSON string when it is not JSON).
    pub fn call(&self, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (code, text) = http(self.port, method, path, token, &body);
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `lifeboat drill ARGS --config …` on this coordinator's database and policy.
    pub fn drill_cli(&self, args: &[&str]) -> Output {
        lifeboat()
            .arg("drill")
            .args(args)
            .args(["--config", self.config().to_str().unwrap()])
            .output()
            .unwrap()
    }

    /// The sealed record of drill `id` as `lifeboat drill record` prints it.
    pub fn record(&self, id: &str) -> Value {
        let out = self.drill_cli(&["record", id]);
        assert!(
            out.status.success(),
            "drill record {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until drill `id` has a sealed record (`GET /api/v1/drills/{id}/record` is 200).
    pub fn wait_sealed(&self, id: &str, token: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (code, body) = self.call(
                "GET",
                &format!("/api/v1/drills/{id}/record"),
                token,
                &Value::Null,
            );
            if code == 200 {
                return;
            }
            let (_, state) = self.call("GET", &format!("/api/v1/drills/{id}"), token, &Value::Null);
            assert!(
                Instant::now() < deadline,
                "drill {id} not sealed within {limit:?} ({code} {body}); its state:\n{state:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Writes `<dir>/agent.toml` for `host` at `site` with a fresh enrolment token and starts
    /// the agent with `env` (its log in `<dir>/agent.log`, appended to across restarts).
    pub fn agent(&self, dir: &Path, host: &str, site: &str, env: &[(&str, &str)]) -> Running {
        std::fs::create_dir_all(dir).unwrap();
        let token = self.admin(&["enrol-token", "--host", host, "--site", site], "");
        write_agent_config(dir, host, site, self.port);
        // Kept for restarts (an enrolled agent does not use it again, but its config names it).
        std::fs::write(dir.join("enrol-token.test"), &token).unwrap();
        restart_agent(dir, env)
    }
}

/// `lifeboat coordinator --config CONFIG ARGS` with `stdin`; its stdout, trimmed. Fails the
/// test when the command fails.
pub fn coordinator_cli(config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{stdin}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "coordinator {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `<dir>/agent.toml`: an agent of `host` at `site` reporting to the coordinator on
/// `port` every second, its state under `<dir>/state`, enrolling with `TEST_ENROL_TOKEN`.
pub fn write_agent_config(dir: &Path, host: &str, site: &str, port: u16) {
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            r#"host = "{host}"
site = "{site}"
state-dir = "{state}"
jitter = "0s"
reload-every = "1s"
shutdown-grace = "5s"

[coordinator]
url = "http://127.0.0.1:{port}"
enrol-token = {{ env = "TEST_ENROL_TOKEN" }}
heartbeat-every = "1s"
request-timeout = "10s"
"#,
            state = dir.join("state").display(),
        ),
    )
    .unwrap();
}

/// Starts (again) the agent configured in `<dir>/agent.toml` by [`Coordinator::agent`].
pub fn restart_agent(dir: &Path, env: &[(&str, &str)]) -> Running {
    let token = std::fs::read_to_string(dir.join("enrol-token.test")).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    let mut cmd = lifeboat();
    cmd.args([
        "agent",
        "--config",
        dir.join("agent.toml").to_str().unwrap(),
        "--log",
        "info",
    ])
    .env("TEST_ENROL_TOKEN", token)
    .stdout(Stdio::null())
    .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running(cmd.spawn().unwrap())
}

/// The log of the agent in `dir`.
pub fn agent_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}

/// A TCP relay on 127.0.0.1 to `upstream` that passes uploads at full speed and caps the
/// download rate (all connections together) at `bytes_per_second`: a slow link to the
/// off-site store, so that a restore through it lasts. Stops accepting when dropped.
pub struct SlowLink {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowLink {
    pub fn start(upstream: u16, bytes_per_second: u64) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        // When the link is next free to carry a byte downstream.
        let free_at = Arc::new(Mutex::new(Instant::now()));
        let per_byte = Duration::from_secs_f64(1.0 / bytes_per_second as f64);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || relay(client, server, None));
                        let free_at = free_at.clone();
                        std::thread::spawn(move || relay(s2, c2, Some((free_at, per_byte))));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SlowLink { port, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes, pacing every chunk when `pace` is given.
fn relay(mut from: TcpStream, mut to: TcpStream, pace: Option<(Arc<Mutex<Instant>>, Duration)>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((free_at, per_byte)) = &pace {
            let done = {
                let mut f = free_at.lock().unwrap();
                let begin = (*f).max(Instant::now());
                *f = begin + *per_byte * n as u32;
                *f
            };
            std::thread::sleep(done.saturating_duration_since(Instant::now()));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
