//! Two real coordinator replicas sharing one PostgreSQL database: exactly one of them runs the
//! assessment sweep (it holds the `assessment-sweep` advisory-lock lease and publishes fleet
//! figures on `/metrics`); when that replica dies (SIGKILL: no chance to release anything) the
//! other takes the sweep over within a few sweep intervals, and both keep serving the API all the
//! while.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::{free_port, http, lifeboat, wait_ready, wait_until};

/// Kills the replica if the test ends early.
struct Replica {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Replica {
    fn start(dir: &Path, name: &str, database: &str) -> Replica {
        let port = free_port();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"{database}\"\npolicy-dir = \"{}\"\nsweep-every = \"1s\"\n",
                policies.display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = lifeboat()
            .args(["coordinator", "--config", config.to_str().unwrap()])
            .args(["--log", "info"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let replica = Replica { child, port, log };
        wait_ready(port);
        replica
    }

    /// When this replica's last sweep assessed (from `/metrics`); `None` if it never swept.
    fn last_sweep(&self) -> Option<f64> {
        let (code, text) = http(self.port, "GET", "/metrics", "", "");
        assert_eq!(code, 200, "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("lifeboat_sweep_last_timestamp_seconds "))
            .map(|v| v.trim().parse().unwrap())
    }

    /// Whether this replica sweeps now: its last sweep advances.
    fn is_sweeping(&self) -> bool {
        let Some(first) = self.last_sweep() else {
            return false;
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(250));
            if self.last_sweep().is_some_and(|t| t > first) {
                return true;
            }
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn when_the_sweeping_replica_dies_the_other_takes_the_sweep_over() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let first = Replica::start(dir.path(), "first", &pg.url());
    wait_until(
        Duration::from_secs(20),
        "the first replica to sweep",
        || first.last_sweep().is_some(),
    );
    let second = Replica::start(dir.path(), "second", &pg.url());

    // Only the lease holder sweeps; the other keeps answering without fleet figures.
    std::thread::sleep(Duration::from_secs(3));
    assert!(first.is_sweeping(), "{}", first.log());
    assert_eq!(second.last_sweep(), None, "{}", second.log());
    assert_eq!(http(second.port, "GET", "/readyz", "", "").0, 200);

    // The holder dies without releasing anything.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let died = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the second replica to take the sweep over",
        || second.last_sweep().is_some(),
    );
    let took = died.elapsed();
    assert!(second.is_sweeping(), "{}", second.log());
    assert!(
        second.log().contains("now runs the assessment sweep"),
        "{}",
        second.log()
    );
    eprintln!("takeover after {took:?}");

    // A replica started again does not steal the sweep back.
    let third = Replica::start(dir.path(), "third", &pg.url());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(third.last_sweep(), None, "{}", third.log());
    assert!(second.is_sweeping());
}
