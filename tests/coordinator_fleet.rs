//! The fleet simulator against the real coordinator (SQLite): `lifeboat fleet-sim policy`
//! writes the policy, `lifeboat coordinator` serves it, `lifeboat fleet-sim` enrols 50 agents ×
//! 5 systems and sends heartbeats and run records for a few seconds; the coordinator must have
//! stored every accepted record once, and its `/metrics` must show the whole fleet assessed by
//! the sweep with per-tier counts.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{free_port, http, lifeboat, wait_ready, wait_until};

/// Kills the coordinator when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of an unlabelled or fully labelled series in Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn fifty_simulated_agents_report_to_the_real_coordinator_and_the_sweep_assesses_them() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let out = lifeboat()
        .args([
            "fleet-sim",
            "policy",
            "--agents",
            "50",
            "--systems-per-agent",
            "5",
        ])
        .arg("--out")
        .arg(&policies)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let port = free_port();
    let db = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n",
            db.display(),
            policies.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("coordinator.log")).unwrap();
    let coordinator = Running(
        lifeboat()
            .args(["coordinator", "--log", "info", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_ready(port);

    let out = lifeboat()
        .args(["fleet-sim", "--json", "--coordinator"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--config")
        .arg(&config)
        .args([
            "--agents",
            "50",
            "--systems-per-agent",
            "5",
            "--duration",
            "10s",
        ])
        .args([
            "--heartbeat-every",
            "2s",
            "--run-every",
            "2s",
            "--concurrency",
            "16",
        ])
        .arg("--coordinator-pid")
        .arg(coordinator.0.id().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["agents"], 50, "{report}");
    assert_eq!(report["systems"], 250, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let accepted = report["records_accepted"].as_u64().unwrap();
    // A round every 2 s for 10 s; how many complete depends on the coordinator's speed, but
    // every system reports at least once.
    assert!(accepted >= 250, "{report}");
    assert_eq!(
        report["records_sent"].as_u64().unwrap(),
        accepted,
        "{report}"
    );
    assert!(
        report["submit"]["count"].as_u64().unwrap() >= 50,
        "{report}"
    );
    assert!(
        report["coordinator"]["rss_mib"].as_f64().unwrap() > 1.0,
        "{report}"
    );

    // Every accepted record is stored once.
    let stored = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store =
                lifeboat::coordinator::store::Store::open(&format!("sqlite://{}", db.display()))
                    .await
                    .unwrap();
            store.count_runs(None).await.unwrap()
        });
    assert_eq!(stored, accepted);

    // The sweep runs at start and every 30 s: wait for one that has seen the records.
    let mut text = String::new();
    wait_until(Duration::from_secs(45), "a sweep over the records", || {
        text = http(port, "GET", "/metrics", "", "").1;
        metric(&text, "lifeboat_fleet_agents") == Some(50.0)
    });
    assert_eq!(
        metric(&text, "lifeboat_fleet_systems"),
        Some(250.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "lifeboat_fleet_agents_offline"),
        Some(0.0),
        "{text}"
    );
    assert!(
        metric(&text, "lifeboat_sweep_duration_seconds").is_some(),
        "{text}"
    );
    assert!(metric(&text, "lifeboat_sweep_last_timestamp_seconds").unwrap() > 1.7e9);
    // Per tier: the policy cycles T1, T2, T3, so 100 + 100 + 50 systems; every one has a
    // fresh backup and copy, so none is without evidence for component loss.
    let mut total = 0.0;
    for (tier, n) in [("T1", 100.0), ("T2", 100.0), ("T3", 50.0)] {
        let per_status: f64 = ["compliant", "at-risk", "breached", "no-evidence"]
            .iter()
            .map(|s| {
                metric(
                    &text,
                    &format!(
                        "lifeboat_compliance_systems{{scenario=\"site-loss\",tier=\"{tier}\",status=\"{s}\"}}"
                    ),
                )
                .unwrap_or_else(|| panic!("no {tier} {s} count in:\n{text}"))
            })
            .sum();
        assert_eq!(per_status, n, "{tier}");
        total += per_status;
    }
    assert_eq!(total, 250.0);
    assert_eq!(
        metric(
            &text,
            "lifeboat_compliance_systems{scenario=\"site-loss\",tier=\"T1\",status=\"compliant\"}"
        ),
        Some(100.0),
        "{text}"
    );
    assert!(
        metric(&text, "lifeboat_run_records_total{result=\"accepted\"}").unwrap()
            >= accepted as f64
    );
}
