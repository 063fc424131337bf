//! The web dashboard in headless Chromium (Debian's `chromium` through `chromedriver`), against
//! the real `lifeboat coordinator` binary on SQLite with the repository's `policies/` and one
//! more drill plan (restore, then an operator's sign-off gate):
//!
//! * a viewer logs in, sees the drill waiting at its gate with no Approve, Abort or Start
//!   button, and a POST forged with the viewer's own session and CSRF token is refused with 403
//!   and an audit entry; without the token it is refused too;
//! * an operator logs in (anonymous pages redirect to the login), sees the branch × tier heat
//!   map, follows a cell to the filtered systems and opens a system; approves the gate, and the
//!   real orchestrator moves the drill on to its sealed end; the report links are there and a
//!   report downloads with the browser's session;
//! * the language switch shows Chinese labels and is remembered;
//! * an admin reads the audit log in the dashboard: the forbidden POST and the approval are
//!   there.
//!
//! The drill is put at its gate through the library (a drill is ready only with recorded
//! backups and an online standby agent, which the agent tests cover); everything after that
//! goes through the browser and the binary. Screenshots go to `/tmp/lifeboat-dashboard-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use browser::Browser;
use common::{free_port, lifeboat, wait_ready};
use jiff::{SignedDuration, Timestamp};
use lifeboat::coordinator::store::{AuditFilter, DrillStatus, NewDrill, Page, Store};
use lifeboat::drill::build;
use lifeboat::drill::machine::{DrillRun, StartInput};
use serde_json::json;
use uuid::Uuid;

const PLAN: &str = "dashboard-sign-off";
const GATE: &str = "sign-off";

/// A restore of one Linfen system at the Datong DR site, then an operator's sign-off.
const PLAN_TOML: &str = r#"
[drills.dashboard-sign-off]
title = "Linfen finance restore with sign-off"
title-zh = "临汾财务系统恢复演练（含签核）"
type = "restore-test"
[drills.dashboard-sign-off.scenario]
kind = "site-loss"
lost-site = "linfen"
[drills.dashboard-sign-off.scope]
systems = ["linfen-finance"]
[drills.dashboard-sign-off.standby]
site = "datong-dr"
host = "dr-app01"
restore-root = "/srv/lifeboat/drill"
keep-restored = true
[[drills.dashboard-sign-off.steps]]
name = "restore"
action = "restore"
timeout = "1h"
[[drills.dashboard-sign-off.steps]]
name = "sign-off"
action = "gate"
role = "operator"
approver = "Branch IT officer"
timeout = "4h"
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The coordinator binary with its files in a tempdir; killed on drop.
struct Coordinator {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Coordinator {
    fn new() -> Coordinator {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            &policies,
        );
        std::fs::write(policies.join("drills").join("dashboard.toml"), PLAN_TOML).unwrap();
        let port = free_port();
        let config = dir.path().join("coordinator.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n\
                 [drills]\ntick-every = \"1s\"\n",
                dir.path().join("coordinator.db").display(),
                policies.display()
            ),
        )
        .unwrap();
        Coordinator {
            dir,
            config,
            port,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("coordinator.db").display()
        )
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn add_user(&self, name: &str, role: &str, password: &str) {
        let mut child = lifeboat()
            .args([
                "coordinator",
                "user",
                "add",
                "--name",
                name,
                "--role",
                role,
                "--config",
            ])
            .arg(&self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("coordinator.log")).unwrap();
        self.child = Some(
            lifeboat()
                .arg("coordinator")
                .arg("--config")
                .arg(&self.config)
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap(),
        );
        wait_ready(self.port);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("coordinator.log")).unwrap_or_default()
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A drill of [`PLAN`] started at `now`, its probe and restore reported by the standby agent:
/// the orchestrator finds it waiting at its gate. Stored as running.
async fn drill_at_the_gate(
    store: &Store,
    policy: &lifeboat::policy::Policy,
    now: Timestamp,
) -> Uuid {
    let plan = policy
        .drills
        .values()
        .find(|p| p.id.as_str() == PLAN)
        .unwrap()
        .clone();
    let (mut planned, extrapolated, _) = build::plan(policy, &plan, &[], now);
    assert_eq!(planned.len(), 1);
    planned[0].point = Some(
        serde_json::from_value(json!({
            "system": "linfen-finance",
            "snapshot": "5f0c2a9e41d7",
            "repository": "linfen-offsite",
            "location": "remote",
            "immutable": false,
            "t_cap": (now - SignedDuration::from_hours(5)).to_string(),
            "t_avail": (now - SignedDuration::from_hours(4)).to_string(),
            "bytes": 734_003_200u64,
            "files": 1_204u64,
        }))
        .unwrap(),
    );
    let id = Uuid::new_v4();
    let mut run = DrillRun::start(StartInput {
        id,
        plan,
        policy_digest: policy.digest.clone(),
        started_by: "user:op".into(),
        now,
        declared_disaster: None,
        systems: planned,
        extrapolated,
        standby_last_seen: Some(now),
        agent_lost_after: SignedDuration::from_secs(180),
    });
    // The standby agent's reports, as it sends them (the wire format).
    for minutes in [1, 12] {
        let at = now + SignedDuration::from_mins(minutes);
        for task in run.open_tasks() {
            let report = json!({
                "task_id": task.task_id,
                "drill_id": id,
                "host": "dr-app01",
                "started_at": (at - SignedDuration::from_secs(50)).to_string(),
                "finished_at": at.to_string(),
                "outcome": "success",
                "probe": {
                    "free_bytes": 1u64 << 40,
                    "targets": [{
                        "system": "linfen-finance", "repository": "linfen-offsite",
                        "credentials": true, "reachable": true, "snapshot_present": true
                    }]
                },
                "restore": {
                    "snapshot": "5f0c2a9e41d7", "repository": "linfen-offsite",
                    "files": 1204, "bytes": 734003200u64, "seconds": 540.0
                }
            });
            run.on_report(&serde_json::from_value(report).unwrap(), at);
        }
    }
    let state = serde_json::to_value(&run).unwrap();
    assert!(
        state.to_string().contains("\"running\""),
        "the drill is not running: {state}"
    );
    store
        .insert_drill(&NewDrill {
            id,
            plan: run.plan.id.clone(),
            status: DrillStatus::Running,
            created_by: "user:op".into(),
            created_at: now,
            scheduled_for: None,
            started_at: Some(now),
            state,
        })
        .await
        .unwrap();
    id
}

/// Logs in through the form; the browser lands on `expect_path`.
async fn log_in(b: &Browser, base: &str, name: &str, password: &str) {
    b.goto(&format!("{base}/ui/drills")).await;
    assert_eq!(
        b.path().await,
        "/ui/login",
        "anonymous pages redirect to the login"
    );
    b.fill("#name", name).await;
    b.fill("#password", password).await;
    b.click_to_next_page("#login").await;
    let path = b.path().await;
    assert_eq!(
        path,
        "/ui/drills",
        "back where the person was going; the page says:\n{}",
        b.text().await
    );
}

async fn log_out(b: &Browser) {
    b.click_to_next_page("#logout").await;
    assert_eq!(b.path().await, "/ui/login");
}

/// A raw HTTP request with the browser's cookies (what a forged or scripted request would
/// send): status, headers and body.
fn raw(port: u16, method: &str, path: &str, cookies: &str, body: &str) -> (u16, String, Vec<u8>) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let code = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, head, out[split + 4..].to_vec())
}

struct Clock(Instant);

impl Clock {
    fn lap(&mut self, what: &str) {
        eprintln!(
            "[dashboard] {what}: {:.2} s",
            self.0.elapsed().as_secs_f64()
        );
        self.0 = Instant::now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_viewer_and_admin_in_headless_chromium() {
    let mut clock = Clock(Instant::now());
    browser::binaries();
    let mut c = Coordinator::new();
    c.add_user("op", "operator", "operator-password-1");
    c.add_user("vi", "viewer", "viewer-password-12");
    c.add_user("ad", "admin", "admin-password-123");
    let policy = lifeboat::policy::load_dir(&c.dir.path().join("policies")).unwrap();
    let store = Store::open(&c.url()).await.unwrap();
    // Started twenty minutes ago: the agent's reports are in the past.
    let started_at = Timestamp::now() - SignedDuration::from_mins(20);
    let drill = drill_at_the_gate(&store, &policy, started_at).await;
    c.start();
    let base = c.base();
    clock.lap("coordinator up, drill at its gate");

    let b = Browser::start(&c.dir.path().join("chromedriver.log")).await;
    clock.lap("chromium session");

    // --- A viewer: sees the gate, no buttons; a forged approval is refused and audited.
    log_in(&b, &base, "vi", "viewer-password-12").await;
    let text = b.text().await;
    assert!(
        text.contains("vi (viewer)") && text.contains(PLAN),
        "{text}"
    );
    assert!(
        !b.has("form[action='/ui/drills'] button").await,
        "no Start for a viewer"
    );
    b.goto(&format!("{base}/ui/drills/{drill}")).await;
    let text = b.text().await;
    assert!(text.contains("Waiting for approval by operator"), "{text}");
    assert!(
        !b.has(&format!("#approve-{GATE}")).await,
        "no Approve for a viewer"
    );
    assert!(!b.has("#abort").await, "no Abort for a viewer");
    assert!(
        !b.has("a[href='/ui/audit']").await,
        "no audit log for a viewer"
    );
    b.screenshot("/tmp/lifeboat-dashboard-1-viewer-drill.png")
        .await;
    let session = b.cookie("lifeboat_session").await.expect("session cookie");
    let csrf = {
        let src = b.client.source().await.unwrap();
        let at = src.find("name=\"csrf\" value=\"").unwrap() + 19;
        src[at..at + 64].to_string()
    };
    let cookies = format!("lifeboat_session={session}");
    let approve = format!("/ui/drills/{drill}/approve");
    let (code, _, body) = raw(
        c.port,
        "POST",
        &approve,
        &cookies,
        &format!("csrf={csrf}&step={GATE}"),
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("needs the operator role"));
    let (code, _, _) = raw(
        c.port,
        "POST",
        "/ui/drills",
        &cookies,
        &format!("csrf={csrf}&plan={PLAN}"),
    );
    assert_eq!(code, 403, "a viewer cannot start a drill");
    // Anonymous: to the login, nothing done.
    let (code, head, _) = raw(c.port, "POST", &approve, "", &format!("step={GATE}"));
    assert_eq!(code, 303, "{head}");
    assert!(head.contains("location: /ui/login"), "{head}");
    log_out(&b).await;
    // The ended session no longer opens anything.
    let (code, head, _) = raw(c.port, "GET", "/ui", &cookies, "");
    assert!(code == 303 && head.contains("/ui/login"), "{head}");
    clock.lap("viewer: no buttons, forged POSTs refused");

    // --- An operator: heat map, a system, the gate approved, the drill moves on.
    log_in(&b, &base, "op", "operator-password-1").await;
    // Without the form's token, even the operator's own session is refused.
    let op_cookies = format!(
        "lifeboat_session={}",
        b.cookie("lifeboat_session").await.unwrap()
    );
    let (code, _, body) = raw(
        c.port,
        "POST",
        &approve,
        &op_cookies,
        &format!("step={GATE}"),
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert!(
        b.has(&format!("form[action='/ui/drills'] button[value='{PLAN}']"))
            .await
    );
    b.goto(&format!("{base}/ui")).await;
    assert!(b.has("#heat-map svg[role=img]").await, "the heat map");
    let map = b
        .client
        .find(fantoccini::Locator::Css("#heat-map"))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    assert!(map.contains("RPO compliance, branch × tier"), "{map}");
    assert!(map.contains("Linfen") && map.contains("T1"), "{map}");
    assert!(map.contains("/ui/systems?site=linfen&amp;tier=T1"), "{map}");
    b.screenshot("/tmp/lifeboat-dashboard-2-operator-overview.png")
        .await;
    clock.lap("operator: overview with the heat map");
    b.click_to_next_page("#heat-map a").await;
    assert_eq!(b.path().await, "/ui/systems");
    let url = b.client.current_url().await.unwrap();
    assert!(url.query().unwrap_or("").contains("site="), "{url}");
    b.click_to_next_page("table.systems a").await;
    assert!(b.path().await.starts_with("/ui/systems/"));
    assert!(b.has("#assessment").await && b.has("#runs").await && b.has("#snapshots").await);
    let text = b.text().await;
    assert!(
        text.contains("Current assessment") && text.contains("site loss"),
        "{text}"
    );
    b.screenshot("/tmp/lifeboat-dashboard-3-system.png").await;
    clock.lap("operator: heat-map cell → systems → one system");

    b.goto(&format!("{base}/ui/drills/{drill}")).await;
    assert!(
        b.has(&format!("#approve-{GATE}")).await,
        "Approve for an operator"
    );
    assert!(b.has("#abort").await, "Abort for an operator");
    b.screenshot("/tmp/lifeboat-dashboard-4-gate.png").await;
    b.fill(
        "input[name=comment]",
        "restored ledger checked by branch IT",
    )
    .await;
    b.click_to_next_page(&format!("#approve-{GATE}")).await;
    assert_eq!(b.path().await, format!("/ui/drills/{drill}"));
    let started = Instant::now();
    loop {
        let text = b.text().await;
        if text.contains("approved by op") && b.has(".badge.st-finished").await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the drill did not move on after the approval:\n{text}\ncoordinator log:\n{}",
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.client.refresh().await.unwrap();
    }
    assert!(!b.has(&format!("#approve-{GATE}")).await && !b.has("#abort").await);
    assert!(b.text().await.contains("Sealed record"));
    b.screenshot("/tmp/lifeboat-dashboard-5-approved.png").await;
    clock.lap("operator: gate approved, drill sealed by the orchestrator");

    // The sealed drill's report opens with the session (no API token).
    b.click_to_next_page("#drill-report").await;
    assert_eq!(b.path().await, format!("/ui/drills/{drill}/report"));
    let text = b.text().await;
    assert!(
        text.contains("Drill report") && text.contains("sign-off"),
        "{text}"
    );
    b.goto(&format!("{base}/ui/drills/{drill}")).await;

    // The approval is the API's: one drill input by the operator, audited as drill.approve.
    let inputs = store.drill_inputs_after(Some(drill), 0, 10).await.unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(
        (inputs[0].kind.as_str(), inputs[0].actor.as_str()),
        ("approve", "user:op")
    );
    assert_eq!(
        inputs[0].detail["comment"],
        "restored ledger checked by branch IT"
    );

    // Reports: every quarter, language and format is offered; one downloads with the session.
    b.goto(&format!("{base}/ui/reports")).await;
    let links = b
        .client
        .find_all(fantoccini::Locator::Css("a.report"))
        .await
        .unwrap();
    assert_eq!(links.len(), 4 * 2 * 4);
    let href = links[2].attr("href").await.unwrap().unwrap();
    assert!(
        href.starts_with("/ui/reports/quarterly?quarter=") && href.contains("format=csv"),
        "{href}"
    );
    let (code, head, body) = raw(c.port, "GET", &href, &op_cookies, "");
    eprintln!(
        "[dashboard] report download {href}: {code}, {} bytes, {}",
        body.len(),
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-type"))
            .unwrap_or("")
    );
    assert_eq!(code, 200, "{head}");
    assert!(
        head.contains("text/csv") && head.contains("attachment"),
        "{head}"
    );
    assert!(String::from_utf8_lossy(&body).contains("linfen-finance"));
    // The Chinese HTML opens in the browser.
    let zh = links[4].attr("href").await.unwrap().unwrap();
    assert!(
        zh.contains("lang=zh-CN") && zh.contains("format=html"),
        "{zh}"
    );
    b.goto(&format!("{base}{zh}")).await;
    let text = b.text().await;
    assert!(
        text.contains("恢复") && text.contains("linfen-finance"),
        "{text}"
    );
    b.screenshot("/tmp/lifeboat-dashboard-6-report-zh.png")
        .await;
    b.goto(&format!("{base}/ui/reports")).await;
    clock.lap("reports");

    // Chinese, remembered by the cookie.
    b.click_to_next_page("#lang-switch").await;
    let text = b.text().await;
    assert!(
        text.contains("报告") && text.contains("总览") && text.contains("季度"),
        "{text}"
    );
    b.goto(&format!("{base}/ui")).await;
    let text = b.text().await;
    assert!(
        text.contains("RPO 达标情况") && text.contains("代理在线"),
        "{text}"
    );
    b.screenshot("/tmp/lifeboat-dashboard-7-zh-overview.png")
        .await;
    b.goto(&format!("{base}/ui/drills/{drill}")).await;
    assert!(b.text().await.contains("批准人"), "the approval in Chinese");
    b.click_to_next_page("#lang-switch").await;
    assert!(b.text().await.contains("approved by"));
    log_out(&b).await;
    clock.lap("Chinese labels");

    // --- An admin reads the audit log in the dashboard.
    log_in(&b, &base, "ad", "admin-password-123").await;
    b.goto(&format!("{base}/ui/audit")).await;
    let text = b.text().await;
    assert!(
        text.contains("people.forbidden") && text.contains("user:vi"),
        "{text}"
    );
    assert!(
        text.contains("drill.approve") && text.contains("ui.csrf-refused"),
        "{text}"
    );
    b.screenshot("/tmp/lifeboat-dashboard-8-audit.png").await;
    b.quit().await;
    clock.lap("admin: audit log");

    // In the store: the viewer's forbidden approval, with the route it tried.
    let forbidden = store
        .list_audit(
            &AuditFilter {
                action: Some("people.forbidden".into()),
                ..AuditFilter::default()
            },
            Page::first(10),
        )
        .await
        .unwrap();
    assert!(
        forbidden
            .iter()
            .any(|e| e.actor == "user:vi" && e.target == "POST /ui/drills/{id}/approve"),
        "{forbidden:?}"
    );
    // No token in the log or the audit trail.
    let log = c.log();
    assert!(
        !log.contains(&session) && !log.contains("lbs-"),
        "a session token in the log"
    );
    let all = store
        .list_audit(&AuditFilter::default(), Page::first(1000))
        .await
        .unwrap();
    assert!(all.iter().all(|e| !e.detail.to_string().contains("lbs-")));
    store.close().await;
}
