//! HTTPS in the real coordinator binary: with a `[tls]` section it serves the API over rustls;
//! the agent's client enrols and sends a heartbeat through it trusting the coordinator's
//! certificate by `ca-file`; a client that does not trust it, or speaks plain HTTP, gets nothing;
//! a renewed certificate is picked up without a restart; a world-readable key is refused at
//! start with exit code 3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{free_port, lifeboat, wait_until};
use lifeboat::agent::client::{ClientConfig, CoordinatorClient};
use lifeboat::api::{EnrolRequest, Heartbeat, SpoolStatus};

/// Kills the coordinator if the test ends early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a self-signed certificate for localhost and 127.0.0.1; returns its PEM.
fn write_cert(dir: &Path) -> String {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    let key = dir.join("key.pem");
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    cert.cert.pem()
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let config = dir.join("coordinator.toml");
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\npolicy-dir = \"{policies}\"\n\n\
             [tls]\ncert-file = \"{cert}\"\nkey-file = \"{key}\"\n",
            db = dir.join("coordinator.db").display(),
            policies = policies.display(),
            cert = dir.join("cert.pem").display(),
            key = dir.join("key.pem").display(),
        ),
    )
    .unwrap();
    config
}

/// `GET url`: the status, or the client's error.
fn get(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
) -> reqwest::Result<reqwest::StatusCode> {
    rt.block_on(async { client.get(url).send().await.map(|r| r.status()) })
}

fn https_client(ca_pem: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(pem) = ca_pem {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[test]
fn the_coordinator_serves_https_and_the_agent_client_trusts_it_by_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ca = write_cert(dir.path());
    let config = write_config(dir.path(), port);

    let out = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .args([
            "enrol-token",
            "--host",
            "yuncheng-fs01",
            "--site",
            "yuncheng",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enrolment = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let log_path = dir.path().join("coordinator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _coordinator = Running(
        lifeboat()
            .args([
                "coordinator",
                "--config",
                config.to_str().unwrap(),
                "--log",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let trusting = https_client(Some(&ca));
    wait_until(
        Duration::from_secs(30),
        "the coordinator over HTTPS",
        || get(&rt, &trusting, &format!("{base}/readyz")).is_ok_and(|s| s == 200),
    );
    let log_text = std::fs::read_to_string(&log_path).unwrap();
    assert!(log_text.contains("HTTPS"), "{log_text}");

    // The OpenAPI document is served without a login and names every agent route.
    let doc: serde_json::Value = rt.block_on(async {
        trusting
            .get(format!("{base}/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for path in [
        lifeboat::api::ENROL_PATH,
        lifeboat::api::HEARTBEAT_PATH,
        lifeboat::api::RUNS_PATH,
        "/api/v1/systems/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }

    // A client that does not trust the certificate is refused in the handshake.
    let err = get(&rt, &https_client(None), &format!("{base}/healthz")).unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = get(
        &rt,
        &https_client(None),
        &format!("http://127.0.0.1:{port}/healthz"),
    );
    assert!(
        plain.as_ref().map_or(true, |s| *s != 200),
        "plain HTTP was served: {plain:?}"
    );

    // The agent's own client: enrol with the one-time token, then a heartbeat, trusting the
    // coordinator through its ca-file.
    let mut client_config = ClientConfig::new(base.parse().unwrap());
    client_config.ca_file = Some(dir.path().join("cert.pem"));
    let mut client = CoordinatorClient::new(&client_config, None).unwrap();
    let enrolled = rt
        .block_on(client.enrol(&EnrolRequest {
            enrolment_token: lifeboat::api::Token::new(enrolment),
            host: "yuncheng-fs01".into(),
            site: "yuncheng".parse().unwrap(),
            version: "test".into(),
        }))
        .unwrap();
    client.set_token(enrolled.agent_token.into_secret());
    let answer = rt
        .block_on(client.heartbeat(&Heartbeat {
            host: "yuncheng-fs01".into(),
            version: "test".into(),
            sent_at: jiff::Timestamp::now(),
            spool: SpoolStatus::default(),
            assignment_digest: None,
            systems: Vec::new(),
            drill_tasks_running: Vec::new(),
        }))
        .unwrap();
    assert!(answer.assignment_digest.is_some());

    // A renewed certificate (a new key pair) is picked up without a restart on SIGHUP (and
    // within a minute without): clients trusting only the new one get through.
    let renewed = write_cert(dir.path());
    assert_ne!(renewed, ca);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &_coordinator.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let trusting_new = https_client(Some(&renewed));
    wait_until(
        Duration::from_secs(20),
        "the renewed certificate to be served",
        || get(&rt, &trusting_new, &format!("{base}/healthz")).is_ok_and(|s| s == 200),
    );
}

#[test]
fn a_world_readable_key_or_a_non_loopback_plain_listener_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let config = write_config(dir.path(), free_port());
    std::fs::set_permissions(
        dir.path().join("key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("key.pem"), "{stderr}");
    let key = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    assert!(!stderr.contains(key.lines().nth(1).unwrap()), "{stderr}");

    // Without [tls], a listener off loopback is refused with what to do next.
    std::fs::write(
        &config,
        format!(
            "listen = \"0.0.0.0:{}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"/nonexistent\"\n",
            free_port(),
            dir.path().join("c.db").display()
        ),
    )
    .unwrap();
    let out = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("[tls]"), "{stderr}");
}

/// `systemctl reload` sends SIGHUP. Served without [tls] there is nothing to reload: the
/// coordinator logs it and keeps serving (the signal's default action would end it).
#[test]
fn a_plain_http_coordinator_keeps_serving_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\npolicy-dir = \"{policies}\"\n",
            db = dir.path().join("coordinator.db").display(),
            policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").display(),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("coordinator.log");
    let mut coordinator = Running(
        lifeboat()
            .args([
                "coordinator",
                "--config",
                config.to_str().unwrap(),
                "--log",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    common::wait_ready(port);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &coordinator.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(Duration::from_secs(10), "the SIGHUP to be logged", || {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("nothing to reload"))
    });
    assert!(
        coordinator.0.try_wait().unwrap().is_none(),
        "the coordinator ended on SIGHUP:\n{}",
        std::fs::read_to_string(&log_path).unwrap()
    );
    let (code, _) = common::http(port, "GET", "/healthz", "", "");
    assert_eq!(code, 200);
}
