//! `lifeboat demo` and `lifeboat up`, the real binary in a temporary directory: the demo exits
//! 0; every repository it wrote is read by restic with the generated password file; the
//! site-loss drill's sealed record (read with `lifeboat drill record` on the directory's
//! coordinator.toml) passed and restored Linfen from off-site copies only; the reports exist; a
//! second demo on the same directory reuses the fleet (same agents, more history); `up` started
//! in the background serves `/healthz`, the dashboard and the API, and stops cleanly on SIGINT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, lifeboat, restic_bin, wait_ready};
use serde_json::{Value, json};

fn demo(dir: &Path, port: u16) -> (String, String) {
    let t = Instant::now();
    let out = lifeboat()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "demo exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    eprintln!("lifeboat demo took {:.1}s", t.elapsed().as_secs_f64());
    (stdout, stderr)
}

/// restic's snapshots of repository `repo` under the demo's directory.
fn restic_snapshots(dir: &Path, repo: &str) -> Vec<Value> {
    let out = Command::new(restic_bin())
        .arg("-r")
        .arg(dir.join("storage").join(repo))
        .arg("--password-file")
        .arg(dir.join("secrets").join(format!("{repo}.pass")))
        .args(["--no-cache", "--json", "snapshots"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restic snapshots {repo}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The drill ids of the reports the demo wrote, sorted.
fn drill_reports(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let id = name
                .strip_prefix("drill-linfen-site-loss-")?
                .strip_suffix(".html")?
                .to_string();
            Some((id, p))
        })
        .collect();
    out.sort();
    out
}

fn login(port: u16, password: &str) -> String {
    let (code, body) = http(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "admin", "password": password }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn demo_runs_the_bank_end_to_end_and_up_serves_the_same_fleet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bank");
    let (stdout, stderr) = demo(&dir, free_port());
    assert!(stdout.contains("summary"), "{stdout}");
    assert!(
        stdout.contains("Password:"),
        "the new admin password is shown once: {stdout}"
    );
    for stage in ["1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7"] {
        assert!(
            stderr.contains(stage),
            "no progress line for stage {stage}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("approving it as the admin user"),
        "the demo says it approves the gate itself:\n{stderr}"
    );
    assert!(stdout.contains("auto-approved"), "{stdout}");

    // Secrets are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    for f in ["admin.password", "secrets/linfen-offsite.pass"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
    }

    // The policy written for this machine passes `lifeboat policy check`.
    let check = lifeboat()
        .args(["policy", "check", dir.join("policies").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // restic reads every repository; Linfen's local one holds two rounds of three systems.
    let repos: Vec<String> = std::fs::read_dir(dir.join("storage"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(repos.len(), 9, "{repos:?}");
    for repo in &repos {
        assert!(!restic_snapshots(&dir, repo).is_empty(), "{repo} is empty");
    }
    assert_eq!(restic_snapshots(&dir, "linfen-local").len(), 6);
    assert_eq!(restic_snapshots(&dir, "linfen-offsite").len(), 6);

    // The drill: passed, Linfen's three systems restored from copies away from the branch.
    let reports = drill_reports(&dir);
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (id, html) = &reports[0];
    assert!(std::fs::read_to_string(html).unwrap().contains("<html"));
    let quarterly: Vec<String> = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lifeboat-report-") && n.ends_with(".html"))
        .collect();
    assert_eq!(quarterly.len(), 2, "English and Chinese: {quarterly:?}");
    let config = dir.join("coordinator/coordinator.toml");
    let out = lifeboat()
        .args(["drill", "record", id, "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["header"]["status"], "completed", "{record:#}");
    assert_eq!(record["verdict"], "pass", "{record:#}");
    let results = record["results"].as_array().unwrap();
    let mut systems: Vec<&str> = results
        .iter()
        .map(|r| r["result"]["system"].as_str().unwrap())
        .collect();
    systems.sort();
    assert_eq!(
        systems,
        ["linfen-credit", "linfen-finance", "linfen-operations"]
    );
    for r in results {
        let from = r["restore_point"]["repository"].as_str().unwrap();
        assert!(
            ["linfen-offsite", "linfen-vault"].contains(&from),
            "restored from {from}: {r:#}"
        );
        assert_eq!(r["restore_point"]["location"], "remote");
        assert_eq!(r["result"]["verdict"], "pass", "{r:#}");
        assert!(r["bytes_restored"].as_u64().unwrap() > 1 << 20);
    }

    // A second demo on the same directory: the same fleet, more history.
    let (stdout, _) = demo(&dir, free_port());
    assert!(
        !stdout.contains("shown once"),
        "the admin password is not shown again: {stdout}"
    );
    assert_eq!(restic_snapshots(&dir, "linfen-local").len(), 12);
    assert_eq!(drill_reports(&dir).len(), 2);

    // `up` in the background on the same directory.
    let port = free_port();
    let mut up = lifeboat()
        .args(["up", "--dir", dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port);
    let (code, body) = http(port, "GET", "/healthz", "", "");
    assert_eq!((code, body.trim()), (200, "ok"));
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let token = login(port, password.trim());
    // The dashboard: anonymous visitors are sent to its login form.
    let (code, _) = http(port, "GET", "/ui", "", "");
    assert_eq!(code, 303, "/ui without a session");
    let (code, body) = http(port, "GET", "/ui/login", "", "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("type=\"password\""), "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let agents = loop {
        let (code, body) = http(port, "GET", "/api/v1/agents", &token, "");
        assert_eq!(code, 200, "{body}");
        let agents: Vec<Value> = serde_json::from_str(&body).unwrap();
        if agents.len() >= 7 || Instant::now() > deadline {
            break agents;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut hosts: Vec<&str> = agents.iter().map(|a| a["host"].as_str().unwrap()).collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            "dr-restore01",
            "ho-archive01",
            "ho-report01",
            "linfen-fs01",
            "linfen-fs02",
            "yuncheng-fs01",
            "yuncheng-fs02"
        ],
        "one agent per host, enrolled once"
    );
    // Ctrl-C stops everything cleanly.
    let t = Instant::now();
    Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = up.kill();
            let output = up.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
            panic!(
                "up did not stop within 60 s of SIGINT; the end of its log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = up.wait_with_output().unwrap();
    assert!(
        status.success(),
        "up exited {status:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("up stopped {:.1}s after SIGINT", t.elapsed().as_secs_f64());
}
