//! Alerts from the real coordinator binary (SQLite, a sweep every second) to real local
//! receivers: an HTTP server registered as a generic, a WeCom, a DingTalk and a Slack webhook
//! (plus a generic one that answers 500 at first), and an SMTP sink with authentication.
//!
//! A T1 system (4 h RPO) that was never backed up fires `rpo-breached`; a failed backup fires
//! `run-failed`; a successful backup copied off site resolves both. Each channel gets exactly
//! one firing and one resolve notification per alert in its documented body shape, the flaky
//! receiver gets its firing later (retried) and never twice, the e-mail arrives with the SMTP
//! login, `GET /api/v1/alerts` lists the states, and the coordinator's log holds neither a
//! webhook key nor the SMTP password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::smtp_sink::SmtpSink;
use common::{free_port, http, lifeboat, wait_ready, wait_until};
use jiff::{SignedDuration, Timestamp};
use lifeboat::api::{Heartbeat, RunBatch, RunEnvelope};
use lifeboat::run::{Outcome, RepoResult, RunError, RunKind, RunRecord};
use serde_json::{Value, json};

const SYSTEM: &str = "sim-00001-s1";
const HOST: &str = "sim-00001";
const VIEWER_PASSWORD: &str = "viewer-password-alerts-1";
const SMTP_PASSWORD: &str = "smtp-pass-5f0c2a91d3";
/// The key each webhook URL carries; none may appear in the coordinator's log.
const KEYS: [&str; 5] = [
    "GENERICKEY7d1e",
    "WECOMKEY93ab2",
    "DINGKEY4c77f0",
    "SLACKKEYa81c5",
    "FLAKYKEY2b6d9",
];

/// Kills the coordinator when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request the webhook receiver answered with 2xx.
#[derive(Debug, Clone)]
struct Received {
    /// `generic`, `wecom`, `dingtalk`, `slack` or `flaky`: the first path segment.
    channel: String,
    target: String,
    body: Value,
}

/// An HTTP receiver on 127.0.0.1 for every webhook: records each body it accepts. Requests to
/// `/flaky…` are answered 500 the first `flaky_failures` times.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// Requests to `/flaky…`, refused or not.
    flaky_requests: Arc<Mutex<u32>>,
}

impl Receiver {
    fn start(flaky_failures: u32) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let (rec, refs) = (Arc::clone(&received), Arc::clone(&refused));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (rec, refs) = (Arc::clone(&rec), Arc::clone(&refs));
                std::thread::spawn(move || serve(stream, &rec, &refs, flaky_failures));
            }
        });
        Receiver {
            port,
            received,
            flaky_requests: refused,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: std::net::TcpStream,
    received: &Mutex<Vec<Received>>,
    refused: &Mutex<u32>,
    flaky_failures: u32,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let channel = target
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or("")
        .to_string();
    let fail = channel == "flaky" && {
        let mut n = refused.lock().unwrap();
        *n += 1;
        *n <= flaky_failures
    };
    let (status, answer) = if fail {
        ("500 Internal Server Error", "{}")
    } else {
        received.lock().unwrap().push(Received {
            channel,
            target,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        ("200 OK", "{\"errcode\":0,\"errmsg\":\"ok\"}")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// `(status, rule, subject)` of a notification body of any kind; the text kinds are read from
/// their title line `[FIRING] severity rule subject`.
fn about(r: &Received) -> (String, String, String) {
    let b = &r.body;
    if b.get("rule").is_some() {
        return (
            b["status"].as_str().unwrap().into(),
            b["rule"].as_str().unwrap().into(),
            b["subject"].as_str().unwrap().into(),
        );
    }
    let text = b["markdown"]["content"]
        .as_str()
        .or(b["markdown"]["text"].as_str())
        .or(b["text"].as_str())
        .unwrap_or_else(|| panic!("unknown body shape: {b}"));
    title_words(text)
}

fn title_words(text: &str) -> (String, String, String) {
    let title = text.lines().next().unwrap().trim_matches('*');
    let (status, rest) = title.split_once("] ").unwrap();
    let words: Vec<&str> = rest.split_whitespace().collect();
    (
        status.trim_start_matches('[').to_lowercase(),
        words[1].into(),
        words[2].into(),
    )
}

/// How many notifications each `(channel, status, rule, subject)` got.
fn counts(received: &[Received]) -> BTreeMap<(String, String, String, String), usize> {
    let mut out = BTreeMap::new();
    for r in received {
        let (status, rule, subject) = about(r);
        *out.entry((r.channel.clone(), status, rule, subject))
            .or_default() += 1;
    }
    out
}

const CHANNELS: [&str; 5] = ["generic", "wecom", "dingtalk", "slack", "flaky"];

fn count(received: &[Received], channel: &str, status: &str, rule: &str, subject: &str) -> usize {
    counts(received)
        .get(&(channel.into(), status.into(), rule.into(), subject.into()))
        .copied()
        .unwrap_or(0)
}

/// The subject of each alert the test drives.
const BREACH: (&str, &str) = ("rpo-breached", "sim-00001-s1/site-loss");
const FAILED: (&str, &str) = ("run-failed", "sim-00001-s1/backup");

fn everywhere(receiver: &Receiver, status: &str, (rule, subject): (&str, &str)) -> bool {
    let received = receiver.received();
    CHANNELS
        .iter()
        .all(|c| count(&received, c, status, rule, subject) >= 1)
}

/// A backup of [`SYSTEM`] captured at `at`: successful at every repository of its chain, or
/// failed at the first.
fn backup(id: &str, at: Timestamp, ok: bool) -> RunRecord {
    let mut r = RunRecord::start(RunKind::Backup, id.into(), HOST.into(), at);
    r.system = Some(SYSTEM.into());
    r.capture_time = Some(at);
    r.finished_at = at + SignedDuration::from_secs(5);
    if ok {
        r.snapshot_id = Some(format!("snap-{id}"));
        r.outcome = Outcome::Success;
        r.repositories = [
            ("sim-local", "local"),
            ("sim-offsite", "remote"),
            ("sim-vault", "remote"),
        ]
        .iter()
        .map(|(repo, location)| RepoResult {
            repository: (*repo).into(),
            location: (*location).into(),
            immutable: *repo == "sim-vault",
            outcome: Outcome::Success,
            available_at: Some(at + SignedDuration::from_secs(5)),
            snapshots: vec![format!("snap-{id}")],
            bytes_added: 1,
            seconds: 1.0,
            error: None,
        })
        .collect();
    } else {
        r.outcome = Outcome::Failed;
        r.error = Some(RunError {
            kind: "storage".into(),
            message: "the local repository is full".into(),
        });
    }
    r
}

fn submit(port: u16, token: &str, seq: u64, record: RunRecord) {
    let batch = RunBatch {
        records: vec![RunEnvelope {
            key: record.run_id.clone(),
            seq,
            system: record.system.clone(),
            record,
        }],
    };
    let (code, body) = http(
        port,
        "POST",
        "/api/v1/agents/runs",
        token,
        &serde_json::to_string(&batch).unwrap(),
    );
    assert_eq!(code, 200, "{body}");
}

fn heartbeat(port: u16, token: &str) {
    let beat = Heartbeat {
        drill_tasks_running: Vec::new(),
        host: HOST.into(),
        version: "test".into(),
        sent_at: Timestamp::now(),
        spool: Default::default(),
        assignment_digest: None,
        systems: Vec::new(),
    };
    let (code, body) = http(
        port,
        "POST",
        "/api/v1/agents/heartbeat",
        token,
        &serde_json::to_string(&beat).unwrap(),
    );
    assert_eq!(code, 200, "{body}");
}

/// The e-mails the test drives (a failed backup may also breach the other scenarios of a
/// system that had no evidence before; those alerts are not counted here).
const MAIL_SUBJECTS: [&str; 4] = [
    "lifeboat [FIRING] critical rpo-breached sim-00001-s1/site-loss",
    "lifeboat [FIRING] warning run-failed sim-00001-s1/backup",
    "lifeboat [RESOLVED] critical rpo-breached sim-00001-s1/site-loss",
    "lifeboat [RESOLVED] warning run-failed sim-00001-s1/backup",
];

fn mail_subject(m: &common::smtp_sink::Mail) -> &str {
    m.data
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
}

fn expected_mail(m: &common::smtp_sink::Mail) -> bool {
    MAIL_SUBJECTS.contains(&mail_subject(m))
}

fn coordinator_cli(config: &Path, args: &[&str], stdin: &str) -> String {
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
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn alerts_fire_once_resolve_once_on_every_channel_and_survive_a_failing_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let out = lifeboat()
        .args([
            "fleet-sim",
            "policy",
            "--agents",
            "1",
            "--systems-per-agent",
            "1",
        ])
        .arg("--out")
        .arg(&policies)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The flaky receiver fails more often than one evaluation tries (3 attempts).
    let receiver = Receiver::start(4);
    let smtp = SmtpSink::start();
    let hook = |path: &str, key: &str| format!("http://127.0.0.1:{}/{path}{key}", receiver.port);
    let flaky_file = dir.path().join("flaky-url");
    std::fs::write(&flaky_file, hook("flaky?key=", KEYS[4]) + "\n").unwrap();
    std::fs::set_permissions(&flaky_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let port = free_port();
    let db = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
database = "sqlite://{db}"
policy-dir = "{policies}"
sweep-every = "1s"

[alerts]
coordinator-url = "http://127.0.0.1:{port}"

[[alerts.webhook]]
name = "generic"
kind = "generic"
url-env = "TEST_HOOK_GENERIC"

[[alerts.webhook]]
name = "wecom"
kind = "wecom"
url-env = "TEST_HOOK_WECOM"

[[alerts.webhook]]
name = "dingtalk"
kind = "dingtalk"
url-env = "TEST_HOOK_DINGTALK"

[[alerts.webhook]]
name = "slack"
kind = "slack"
url-env = "TEST_HOOK_SLACK"

[[alerts.webhook]]
name = "flaky"
kind = "generic"
url-file = "{flaky}"

[alerts.email]
server = "127.0.0.1"
port = {smtp}
tls = "none"
from = "lifeboat <lifeboat@bank.example>"
to = ["dba@bank.example", "ops@bank.example"]
username = "lifeboat"
password-env = "TEST_SMTP_PASSWORD"
"#,
            db = db.display(),
            policies = policies.display(),
            flaky = flaky_file.display(),
            smtp = smtp.port,
        ),
    )
    .unwrap();
    coordinator_cli(
        &config,
        &["user", "add", "--name", "vera", "--role", "viewer"],
        &format!("{VIEWER_PASSWORD}\n"),
    );
    let enrolment = coordinator_cli(
        &config,
        &["enrol-token", "--host", HOST, "--site", "sim-branch"],
        "",
    );
    let log_path = dir.path().join("coordinator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _coordinator = Running(
        lifeboat()
            .args(["coordinator", "--log", "debug", "--config"])
            .arg(&config)
            .env("TEST_HOOK_GENERIC", hook("generic?key=", KEYS[0]))
            .env("TEST_HOOK_WECOM", hook("wecom/send?key=", KEYS[1]))
            .env(
                "TEST_HOOK_DINGTALK",
                hook("dingtalk/robot/send?access_token=", KEYS[2]),
            )
            .env("TEST_HOOK_SLACK", hook("slack/services/T0/B0/", KEYS[3]))
            .env("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_ready(port);
    let (code, body) = http(
        port,
        "POST",
        "/api/v1/agents/enrol",
        "",
        &json!({ "enrolment_token": enrolment.trim(), "host": HOST, "site": "sim-branch", "version": "test" }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let agent: Value = serde_json::from_str(&body).unwrap();
    let agent = agent["agent_token"].as_str().unwrap().to_string();
    heartbeat(port, &agent);

    // 1. Never backed up, on a 4 h tier: the breach fires everywhere, the flaky receiver too
    //    after its 500s.
    wait_until(
        Duration::from_secs(60),
        "the breach on every channel",
        || everywhere(&receiver, "firing", BREACH),
    );
    // 2. A failed backup.
    heartbeat(port, &agent);
    let now = Timestamp::now();
    submit(port, &agent, 1, backup("b-failed", now, false));
    wait_until(
        Duration::from_secs(60),
        "the failed run on every channel",
        || everywhere(&receiver, "firing", FAILED),
    );
    // 3. A backup that succeeds everywhere: both resolve.
    heartbeat(port, &agent);
    submit(
        port,
        &agent,
        2,
        backup("b-ok", now + SignedDuration::from_secs(10), true),
    );
    wait_until(Duration::from_secs(60), "both resolves everywhere", || {
        everywhere(&receiver, "resolved", BREACH) && everywhere(&receiver, "resolved", FAILED)
    });
    wait_until(Duration::from_secs(30), "four e-mails", || {
        smtp.mails().iter().filter(|m| expected_mail(m)).count() >= 4
    });
    // A few more sweeps: nothing is sent again.
    std::thread::sleep(Duration::from_secs(4));
    heartbeat(port, &agent);
    std::thread::sleep(Duration::from_secs(2));

    let received = receiver.received();
    for channel in CHANNELS {
        for status in ["firing", "resolved"] {
            for (rule, subject) in [BREACH, FAILED] {
                assert_eq!(
                    count(&received, channel, status, rule, subject),
                    1,
                    "{channel} {status} {rule} {subject}: {:#?}",
                    counts(&received)
                );
            }
        }
    }
    // Every request to the flaky receiver was either one of its four refusals or one accepted
    // notification: nothing was sent again once it was taken.
    let flaky_taken = received.iter().filter(|r| r.channel == "flaky").count();
    assert_eq!(
        *receiver.flaky_requests.lock().unwrap(),
        4 + flaky_taken as u32,
        "{:#?}",
        counts(&received)
    );

    // The documented body shapes.
    let first = |channel: &str, status: &str, (rule, subject): (&str, &str)| {
        received
            .iter()
            .find(|r| {
                r.channel == channel && about(r) == (status.into(), rule.into(), subject.into())
            })
            .unwrap()
            .clone()
    };
    let generic = first("generic", "firing", BREACH).body;
    let mut keys: Vec<&str> = generic
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "at",
            "coordinator",
            "detail",
            "reminder",
            "rule",
            "severity",
            "since",
            "status",
            "subject",
            "summary"
        ],
        "{generic}"
    );
    assert_eq!(
        generic["severity"], "critical",
        "T1 has a 4 h RPO: {generic}"
    );
    assert_eq!(generic["coordinator"], format!("http://127.0.0.1:{port}/"));
    assert!(
        generic["summary"]
            .as_str()
            .unwrap()
            .contains("no backup has ever been recorded"),
        "{generic}"
    );
    assert!(
        generic["since"]
            .as_str()
            .unwrap()
            .parse::<Timestamp>()
            .is_ok()
    );
    let failed = first("generic", "firing", FAILED).body;
    assert_eq!(failed["severity"], "warning");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("storage: the local repository is full"),
        "{failed}"
    );
    assert_eq!(
        first("flaky", "resolved", FAILED).body["status"],
        "resolved"
    );
    let wecom = first("wecom", "firing", BREACH);
    assert!(wecom.target.starts_with("/wecom/send?key="));
    assert_eq!(wecom.body["msgtype"], "markdown");
    assert_eq!(
        wecom.body["markdown"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["content"]
    );
    let ding = first("dingtalk", "resolved", BREACH).body;
    assert_eq!(ding["msgtype"], "markdown");
    assert_eq!(
        ding["markdown"]["title"],
        "[RESOLVED] critical rpo-breached sim-00001-s1/site-loss"
    );
    assert!(
        ding["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("resolved at")
    );
    let slack = first("slack", "firing", FAILED).body;
    assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("**[FIRING] warning run-failed")
    );

    // E-mail: one per notification, to both recipients, after AUTH with the configured login.
    let mails: Vec<_> = smtp.mails().into_iter().filter(expected_mail).collect();
    assert_eq!(mails.len(), 4, "{mails:#?}");
    for m in &mails {
        assert_eq!(m.from, "lifeboat@bank.example");
        assert_eq!(m.to, ["dba@bank.example", "ops@bank.example"]);
        assert_eq!(
            m.auth,
            Some(("lifeboat".to_string(), SMTP_PASSWORD.to_string()))
        );
    }
    let subjects: Vec<&str> = mails.iter().map(mail_subject).collect();
    for s in MAIL_SUBJECTS {
        assert_eq!(
            subjects.iter().filter(|x| **x == s).count(),
            1,
            "{s}: {subjects:?}"
        );
    }

    // The alert states, read by a viewer.
    let (code, body) = http(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "vera", "password": VIEWER_PASSWORD }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let session: Value = serde_json::from_str(&body).unwrap();
    let session = session["token"].as_str().unwrap();
    let (code, body) = http(port, "GET", "/api/v1/alerts?state=resolved", session, "");
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let mine: Vec<&Value> = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            [BREACH, FAILED]
                .contains(&(a["rule"].as_str().unwrap(), a["subject"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(mine.len(), 2, "{body}");
    // Every alert of the system resolved: what the list says of the breach is its latest
    // summary (a failed backup turned "never backed up" into "breached").
    assert!(body.contains("site-loss RPO of 4h breached"), "{body}");
    for a in list["alerts"].as_array().unwrap() {
        assert_eq!(a["state"], "resolved", "{a}");
    }
    for a in &mine {
        assert_eq!(a["state"], "resolved", "{a}");
        assert_eq!(a["delivered"], true, "{a}");
        assert!(a["summary"].as_str().unwrap().contains(SYSTEM), "{a}");
        assert!(a["since"].is_string() && a["severity"].is_string(), "{a}");
    }
    let (code, body) = http(port, "GET", "/api/v1/alerts?state=firing", session, "");
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(SYSTEM), "{body}");
    let (code, body) = http(port, "GET", "/api/v1/alerts?state=maybe", session, "");
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(port, "GET", "/api/v1/alerts", "", "");
    assert_eq!(code, 401);

    // The log names the failing channel, never a webhook key or the SMTP password.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("alert notification not delivered") && log.contains("flaky"),
        "{log}"
    );
    for secret in KEYS.iter().chain([&SMTP_PASSWORD]) {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}
