//! The people side of the real coordinator binary over HTTP, with a SQLite database in a
//! tempdir: the first admin created with `lifeboat coordinator user add`, logins, the role
//! matrix (viewer, operator, admin), API tokens and their revocation, agent tokens refused on
//! people endpoints and people's tokens on agent endpoints, the audit log read through the admin
//! endpoint, and no password or token in clear in the database file or in any answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, lifeboat, wait_until};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN_PASSWORD: &str = "first-admin-password-7c1e";
const VIEWER_PASSWORD: &str = "viewer-password-93ab";

/// Kills the coordinator if the test ends early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn coordinator(config: &Path, args: &[&str], stdin: &str) -> Output {
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

/// Every answer of the test, to check that none holds a secret.
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    fn call(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        bearer: &str,
        body: &Value,
    ) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (code, text) = http(port, method, path, bearer, &body);
        self.0.push(text.clone());
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn login(&mut self, port: u16, name: &str, password: &str) -> String {
        let (code, body) = self.call(
            port,
            "POST",
            "/api/v1/login",
            "",
            &json!({ "name": name, "password": password }),
        );
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn people_log_in_and_every_endpoint_is_checked_against_the_role_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n",
            db.display(),
            policies.display()
        ),
    )
    .unwrap();

    // A fresh install: the first admin from the command line, password on stdin.
    let out = coordinator(
        &config,
        &["user", "add", "--name", "root", "--role", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = coordinator(
        &config,
        &["user", "add", "--name", "root", "--role", "viewer"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(2), "a taken name is a usage error");
    let out = coordinator(
        &config,
        &["user", "add", "--name", "weak", "--role", "viewer"],
        "short\n",
    );
    assert_eq!(out.status.code(), Some(2), "a short password is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 characters"));
    let out = coordinator(&config, &["user", "add", "--help"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("lifeboat coordinator user add --name alice --role admin")
    );

    let log = std::fs::File::create(dir.path().join("coordinator.log")).unwrap();
    let mut server = Running(
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
    wait_until(
        Duration::from_secs(30),
        "the coordinator to be ready",
        || http_ready(port) == 200,
    );

    let mut api = Answers::default();
    let none = Value::Null;

    // Logins: a wrong password or an unknown user is a 401.
    let admin = api.login(port, "root", ADMIN_PASSWORD);
    assert!(admin.starts_with("lbs-"), "{admin}");
    let (code, _) = api.call(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "root", "password": "not-the-password" }),
    );
    assert_eq!(code, 401);
    let (code, _) = api.call(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "nobody", "password": ADMIN_PASSWORD }),
    );
    assert_eq!(code, 401);
    let (code, body) = api.call(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "root" }),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("bad-request")),
        "{body}"
    );
    let (code, _) = api.call(port, "GET", "/api/v1/agents", "", &none);
    assert_eq!(code, 401, "no token, no access");

    // The admin creates a viewer; the answer has no password or hash in it.
    let (code, body) = api.call(
        port,
        "POST",
        "/api/v1/users",
        &admin,
        &json!({ "name": "vera", "password": VIEWER_PASSWORD, "role": "viewer" }),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body,
        json!({ "name": "vera", "role": "viewer", "disabled": false, "created_at": body["created_at"] })
    );
    let (code, _) = api.call(
        port,
        "POST",
        "/api/v1/users",
        &admin,
        &json!({ "name": "vera", "password": VIEWER_PASSWORD, "role": "admin" }),
    );
    assert_eq!(code, 409);
    let (code, body) = api.call(port, "GET", "/api/v1/users", &admin, &none);
    assert_eq!(code, 200);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "vera"]);

    // A viewer reads the agents but changes nothing and reads no audit log.
    let vera = api.login(port, "vera", VIEWER_PASSWORD);
    let (code, body) = api.call(port, "GET", "/api/v1/agents", &vera, &none);
    assert_eq!((code, body), (200, json!([])));
    let (code, body) = api.call(
        port,
        "POST",
        "/api/v1/users",
        &vera,
        &json!({ "name": "eve", "password": VIEWER_PASSWORD, "role": "admin" }),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (code, _) = api.call(port, "GET", "/api/v1/audit", &vera, &none);
    assert_eq!(code, 403);
    let enrol = json!({ "host": "linfen-fs01", "site": "linfen", "valid": "1h" });
    let (code, _) = api.call(port, "POST", "/api/v1/enrolment-tokens", &vera, &enrol);
    assert_eq!(code, 403, "enrolment needs an operator");

    // An API token for vera works until an admin revokes it; then it is a 401.
    let (code, body) = api.call(
        port,
        "POST",
        "/api/v1/tokens",
        &admin,
        &json!({ "user": "vera", "label": "dashboard" }),
    );
    assert_eq!(code, 201, "{body}");
    let api_token = body["token"].as_str().unwrap().to_string();
    let token_id = body["id"].as_str().unwrap().to_string();
    let (code, _) = api.call(port, "GET", "/api/v1/agents", &api_token, &none);
    assert_eq!(code, 200);
    let (code, body) = api.call(port, "GET", "/api/v1/tokens", &admin, &none);
    assert_eq!(
        (code, body[0]["id"].as_str()),
        (200, Some(token_id.as_str())),
        "{body}"
    );
    assert!(
        body[0].get("token").is_none() && body[0].get("hash").is_none(),
        "{body}"
    );
    let (code, _) = api.call(
        port,
        "DELETE",
        &format!("/api/v1/tokens/{token_id}"),
        &admin,
        &none,
    );
    assert_eq!(code, 204);
    let (code, _) = api.call(port, "GET", "/api/v1/agents", &api_token, &none);
    assert_eq!(code, 401, "a revoked API token");
    let (code, _) = api.call(
        port,
        "DELETE",
        "/api/v1/tokens/0000000000000000",
        &admin,
        &none,
    );
    assert_eq!(code, 404);

    // An operator issues an enrolment token (shown once); an agent enrols with it.
    let (code, body) = api.call(
        port,
        "PATCH",
        "/api/v1/users/vera",
        &admin,
        &json!({ "role": "operator" }),
    );
    assert_eq!(
        (code, body["role"].as_str()),
        (200, Some("operator")),
        "{body}"
    );
    let (code, body) = api.call(port, "POST", "/api/v1/enrolment-tokens", &vera, &enrol);
    assert_eq!(code, 201, "{body}");
    let enrolment_token = body["token"].as_str().unwrap().to_string();
    let (code, body) = api.call(
        port,
        "POST",
        "/api/v1/enrolment-tokens",
        &vera,
        &json!({ "host": "nowhere", "site": "linfen" }),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = api.call(port, "POST", "/api/v1/agents/enrol", "", &json!({ "enrolment_token": enrolment_token, "host": "linfen-fs01", "site": "linfen", "version": "test" }));
    assert_eq!(code, 200, "{body}");
    let agent_token = body["agent_token"].as_str().unwrap().to_string();
    let agent_id = body["agent_id"].as_str().unwrap().to_string();

    // Agent tokens are no good for people endpoints, and people's tokens none for agents'.
    let (code, _) = api.call(port, "GET", "/api/v1/agents", &agent_token, &none);
    assert_eq!(code, 401);
    let (code, _) = api.call(port, "GET", "/api/v1/agents/assignment", &admin, &none);
    assert_eq!(code, 401);
    let (code, _) = api.call(
        port,
        "GET",
        "/api/v1/agents/assignment",
        &agent_token,
        &none,
    );
    assert_eq!(code, 200);

    // The admin revokes the agent; its token stops working.
    let (code, _) = api.call(
        port,
        "POST",
        &format!("/api/v1/agents/{agent_id}/revoke"),
        &vera,
        &none,
    );
    assert_eq!(code, 403, "revoking needs an admin");
    let (code, body) = api.call(
        port,
        "POST",
        &format!("/api/v1/agents/{agent_id}/revoke"),
        &admin,
        &none,
    );
    assert!(
        code == 200 && body["revoked_at"].is_string(),
        "{code} {body}"
    );
    let (code, _) = api.call(
        port,
        "GET",
        "/api/v1/agents/assignment",
        &agent_token,
        &none,
    );
    assert_eq!(code, 401);

    // Disabling a user ends their sessions; an admin cannot disable themselves.
    let (code, _) = api.call(
        port,
        "PATCH",
        "/api/v1/users/root",
        &admin,
        &json!({ "disabled": true }),
    );
    assert_eq!(code, 409);
    let (code, _) = api.call(
        port,
        "PATCH",
        "/api/v1/users/vera",
        &admin,
        &json!({ "disabled": true }),
    );
    assert_eq!(code, 200);
    let (code, _) = api.call(port, "GET", "/api/v1/agents", &vera, &none);
    assert_eq!(code, 401);
    let (code, _) = api.call(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "vera", "password": VIEWER_PASSWORD }),
    );
    assert_eq!(code, 401, "a disabled user cannot log in");

    // Logout ends the session.
    let (code, _) = api.call(port, "POST", "/api/v1/logout", &admin, &none);
    assert_eq!(code, 204);
    let (code, _) = api.call(port, "GET", "/api/v1/agents", &admin, &none);
    assert_eq!(code, 401);

    // The audit log, read by an admin, has an entry for each of these.
    let admin = api.login(port, "root", ADMIN_PASSWORD);
    let (code, body) = api.call(port, "GET", "/api/v1/audit?limit=1000", &admin, &none);
    assert_eq!(code, 200, "{body}");
    let entries = body.as_array().unwrap();
    let has = |actor: &str, action: &str, target: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && (actor.is_empty() || e["actor"] == actor)
                && (target.is_empty() || e["target"] == target)
        })
    };
    for (actor, action, target) in [
        ("", "user.created", "user:root"),
        ("user:root", "user.login", "user:root"),
        ("anonymous", "user.login-refused", "user:root"),
        ("anonymous", "user.login-refused", "user:nobody"),
        ("user:root", "user.created", "user:vera"),
        ("user:root", "users.read", "users"),
        ("user:vera", "people.forbidden", "POST /api/v1/users"),
        ("user:vera", "people.forbidden", "GET /api/v1/audit"),
        ("user:root", "api-token.created", "user:vera"),
        ("user:root", "api-tokens.read", "api-tokens"),
        ("user:root", "api-token.revoked", ""),
        ("anonymous", "people.auth-refused", ""),
        ("user:root", "user.updated", "user:vera"),
        ("user:vera", "enrolment-token.issued", "host:linfen-fs01"),
        ("user:root", "agent.revoked", ""),
        ("anonymous", "agent.auth-refused", ""),
        ("user:root", "user.logout", ""),
    ] {
        assert!(
            has(actor, action, target),
            "no audit entry {actor} {action} {target} in\n{body:#}"
        );
    }
    let refused: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "people.auth-refused")
        .map(|e| e["detail"]["reason"].as_str().unwrap_or(""))
        .collect();
    for reason in [
        "revoked API token",
        "an agent's token",
        "unknown or expired token",
    ] {
        assert!(refused.contains(&reason), "{reason} not in {refused:?}");
    }
    let (code, body) = api.call(
        port,
        "GET",
        "/api/v1/audit?action=audit.read",
        &admin,
        &none,
    );
    assert_eq!(
        (code, body[0]["actor"].as_str()),
        (200, Some("user:root")),
        "privileged reads are audited: {body}"
    );

    let status = {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the coordinator did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(status.success());

    // No password or token in clear anywhere: not in the database (and its WAL), not in any
    // answer (which also never carries a stored hash), not in the log.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("coordinator.db") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(
        stored.contains("$argon2id$"),
        "the password hashes are in the database"
    );
    let log = std::fs::read_to_string(dir.path().join("coordinator.log")).unwrap();
    let answers = api.0.join("\n");
    let secrets = [
        ADMIN_PASSWORD,
        VIEWER_PASSWORD,
        &admin,
        &vera,
        &api_token,
        &enrolment_token,
        &agent_token,
    ];
    for secret in secrets {
        assert!(
            !stored.contains(secret),
            "a secret is in the database in clear"
        );
        assert!(
            !log.contains(secret),
            "a secret is in the coordinator's log"
        );
        assert!(
            !answers.contains(&sha256_hex(secret)),
            "a stored hash is in an answer"
        );
    }
    for password in [ADMIN_PASSWORD, VIEWER_PASSWORD] {
        assert!(!answers.contains(password), "a password is in an answer");
    }
    assert!(
        !answers.contains("$argon2"),
        "a password hash is in an answer"
    );
    for (token, times) in [(&api_token, 1), (&enrolment_token, 1), (&vera, 1)] {
        assert_eq!(
            answers.matches(token.as_str()).count(),
            times,
            "a token is shown once only"
        );
    }
}

fn http_ready(port: u16) -> u16 {
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        return 0;
    }
    http(port, "GET", "/readyz", "", "").0
}
