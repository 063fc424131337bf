//! `lifeboat coordinator backup-db`: a consistent copy of a running coordinator's SQLite database,
//! taken while the coordinator and another process write to it, is a working coordinator
//! database (a second coordinator serves from it and its users log in); refusals (existing
//! destination, PostgreSQL, a database that is not lifeboat's) leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use common::{free_port, http, lifeboat, wait_ready};

const PASSWORD: &str = "correct-horse-battery";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A coordinator.toml on the example policy, listening on `port`, with `database`.
fn config(dir: &Path, name: &str, port: u16, database: &str) -> PathBuf {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{database}\"\npolicy-dir = \"{}\"\n",
            policies.display()
        ),
    )
    .unwrap();
    path
}

fn coordinator(config: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn serve(config: &Path, log: &Path) -> Running {
    Running(
        lifeboat()
            .args([
                "coordinator",
                "--config",
                config.to_str().unwrap(),
                "--log",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn login(port: u16) -> u16 {
    http(
        port,
        "POST",
        "/api/v1/login",
        "",
        &format!(r#"{{"name":"alice","password":"{PASSWORD}"}}"#),
    )
    .0
}

fn backup(config: &Path, to: &Path) -> Output {
    coordinator(
        config,
        &["--json", "backup-db", "--to", to.to_str().unwrap()],
        "",
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_copy_taken_under_writes_serves_a_second_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("coordinator.db");
    let port = free_port();
    let cfg = config(
        dir.path(),
        "coordinator.toml",
        port,
        &format!("sqlite://{}", db.display()),
    );
    let out = coordinator(
        &cfg,
        &["user", "add", "--name", "alice", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let _server = serve(&cfg, &dir.path().join("a.log"));
    wait_ready(port);

    // Writers while the copies are taken: logins through the running coordinator (a session and
    // an audit entry each) and enrolment tokens issued by another process on the same file.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, writes, cfg) = (stop.clone(), writes.clone(), cfg.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(login(port), 200);
                let out = coordinator(
                    &cfg,
                    &["enrol-token", "--host", "linfen-fs01", "--site", "linfen"],
                    "",
                );
                assert!(out.status.success(), "{}", stderr(&out));
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    common::wait_until(Duration::from_secs(30), "the first writes", || {
        writes.load(Ordering::Relaxed) >= 2
    });
    let mut copies = Vec::new();
    for i in 0..3 {
        let to = dir.path().join(format!("copy-{i}.db"));
        let out = backup(&cfg, &to);
        assert!(out.status.success(), "backup-db: {}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["to"], to.to_str().unwrap(), "{report}");
        assert!(report["migrations"].as_u64().unwrap() >= 1, "{report}");
        assert_eq!(report["rows"]["users"], 1, "{report}");
        assert!(
            report["rows"]["audit_log"].as_u64().unwrap() >= 1,
            "{report}"
        );
        let meta = std::fs::metadata(&to).unwrap();
        assert_eq!(meta.len(), report["bytes"].as_u64().unwrap());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "the copy holds password hashes"
        );
        copies.push(to);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // Only the copies are left beside the database: no partial file.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("copy"))
        .collect();
    names.sort();
    assert_eq!(names, ["copy-0.db", "copy-1.db", "copy-2.db"]);

    // A coordinator on the last copy serves it: alice logs in and sees the audit log.
    let port_b = free_port();
    let cfg_b = config(
        dir.path(),
        "restored.toml",
        port_b,
        &format!("sqlite://{}", copies[2].display()),
    );
    let _restored = serve(&cfg_b, &dir.path().join("b.log"));
    wait_ready(port_b);
    let (code, body) = http(
        port_b,
        "POST",
        "/api/v1/login",
        "",
        &format!(r#"{{"name":"alice","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(code, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let (code, body) = http(
        port_b,
        "GET",
        "/api/v1/audit",
        token["token"].as_str().unwrap(),
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("enrolment"),
        "tokens issued before the copy: {body}"
    );
}

#[test]
fn refusals_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("coordinator.db");
    let cfg = config(
        dir.path(),
        "coordinator.toml",
        free_port(),
        &format!("sqlite://{}", db.display()),
    );
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // SQLite's own companions of the coordinator's database.
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
            .collect();
        names.sort();
        names
    };

    // No database yet: not found.
    let out = backup(&cfg, &dir.path().join("copy.db"));
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no SQLite database"),
        "{}",
        stderr(&out)
    );

    let out = coordinator(
        &cfg,
        &["user", "add", "--name", "alice", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // An existing destination is never overwritten.
    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, "keep me").unwrap();
    let out = backup(&cfg, &existing);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");

    // A directory that does not exist.
    let out = backup(&cfg, &dir.path().join("missing/copy.db"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // PostgreSQL: refused with the pg_dump line to use instead; the URL is not echoed.
    let pg = config(
        dir.path(),
        "pg.toml",
        free_port(),
        "postgres://lifeboat:hunter2@db.invalid/lifeboat",
    );
    let out = backup(&pg, &dir.path().join("pg.db"));
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));

    // A SQLite database that is not lifeboat's.
    let other = dir.path().join("other.db");
    std::fs::write(&other, b"").unwrap();
    let not_ours = config(
        dir.path(),
        "other.toml",
        free_port(),
        &format!("sqlite://{}", other.display()),
    );
    let out = backup(&not_ours, &dir.path().join("other-copy.db"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no migrations table"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        listing(dir.path()),
        [
            "coordinator.db",
            "coordinator.toml",
            "existing.db",
            "other.db",
            "other.toml",
            "pg.toml"
        ]
    );

    // --help shows examples and the PostgreSQL alternative.
    let out = coordinator(&cfg, &["backup-db", "--help"], "");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("lifeboat coordinator backup-db --to"),
        "{help}"
    );
    assert!(help.contains("pg_dump --format=custom"), "{help}");
}

#[tokio::test]
async fn a_file_that_is_not_a_coordinator_database_fails_verification() {
    use lifeboat::coordinator::store::{StoreError, verify_sqlite_copy};
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let e = verify_sqlite_copy(&garbage).await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
}
