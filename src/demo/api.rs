//! The demo as a person at the API: logs in as the admin, waits for the agents' evidence,
//! starts a drill, approves its gates (the same `POST /api/v1/drills/{id}/approve` input an
//! operator sends, audited under the admin's name) and fetches the sealed record and report.
//!
//! HTTP only; it reads no database and decides nothing about drills itself.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::DemoError;
use crate::drill::record::DrillRecord;
use crate::secret::Secret;

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

fn http_error(e: reqwest::Error) -> DemoError {
    DemoError::Http(e.without_url().to_string())
}

impl Api {
    /// Logs in as `name`.
    pub async fn login(
        listen: SocketAddr,
        name: &str,
        password: &Secret,
    ) -> Result<Api, DemoError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(http_error)?;
        let base = format!("http://{listen}");
        let answer = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({ "name": name, "password": password.expose() }))
            .send()
            .await
            .map_err(http_error)?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(http_error)?;
        let token = body["token"]
            .as_str()
            .filter(|_| status.is_success())
            .ok_or_else(|| DemoError::Http(format!("login as {name} refused ({status})")))?;
        Ok(Api {
            http,
            base,
            token: Secret::new(token.to_string()),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), DemoError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer = req.send().await.map_err(http_error)?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(http_error)?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Result<Value, DemoError> {
        let (status, body) = self.call(method, path, body).await?;
        if status == want {
            Ok(body)
        } else {
            Err(DemoError::Http(format!("{path} answered {status}: {body}")))
        }
    }

    /// Successful runs of `kind` the coordinator holds for `system`.
    pub async fn runs(&self, system: &str, kind: &str) -> Result<usize, DemoError> {
        let body = self
            .expect(
                reqwest::Method::GET,
                &format!("/api/v1/runs?system={system}&kind={kind}&outcome=success&limit=100"),
                None,
                200,
            )
            .await?;
        Ok(body["runs"].as_array().map_or(0, Vec::len))
    }

    /// Agents the coordinator knows.
    pub async fn agents(&self) -> Result<usize, DemoError> {
        let body = self
            .expect(reqwest::Method::GET, "/api/v1/agents", None, 200)
            .await?;
        Ok(body
            .as_array()
            .or_else(|| body["agents"].as_array())
            .map_or(0, Vec::len))
    }

    /// Starts a drill of `plan`; returns its id.
    pub async fn start_drill(&self, plan: &str) -> Result<String, DemoError> {
        let body = self
            .expect(
                reqwest::Method::POST,
                "/api/v1/drills",
                Some(json!({ "plan": plan })),
                201,
            )
            .await?;
        body["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| DemoError::Http(format!("no drill id in {body}")))
    }

    /// Follows drill `id` until its record is sealed, approving every gate that waits;
    /// `say` hears each new step state. Returns the sealed record.
    pub async fn follow_drill(
        &self,
        id: &str,
        timeout: Duration,
        say: &impl Fn(&str),
    ) -> Result<DrillRecord, DemoError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = std::collections::BTreeSet::new();
        let mut approved = std::collections::BTreeSet::new();
        loop {
            let (status, record) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/drills/{id}/record"),
                    None,
                )
                .await?;
            if status == 200 {
                return serde_json::from_value(record).map_err(|e| {
                    DemoError::Http(format!("the drill record does not decode: {e}"))
                });
            }
            let live = self
                .expect(
                    reqwest::Method::GET,
                    &format!("/api/v1/drills/{id}"),
                    None,
                    200,
                )
                .await?;
            for step in live["run"]["steps"].as_array().into_iter().flatten() {
                let name = step["name"].as_str().unwrap_or("?");
                let state = step["status"]
                    .as_str()
                    .or_else(|| step["state"].as_str())
                    .unwrap_or("");
                if !state.is_empty() && seen.insert(format!("{name}:{state}")) {
                    say(&format!("drill step {name}: {state}"));
                }
                if step["awaiting_approval"] == true && approved.insert(name.to_string()) {
                    say(&format!(
                        "drill gate {name} waits for approval: approving it as the admin user \
                         (POST /api/v1/drills/{id}/approve, audited; in a real drill the business \
                         owners approve it)"
                    ));
                    self.expect(
                        reqwest::Method::POST,
                        &format!("/api/v1/drills/{id}/approve"),
                        Some(json!({
                            "step": name,
                            "comment": "auto-approved by lifeboat demo"
                        })),
                        202,
                    )
                    .await?;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DemoError::Stopped(format!(
                    "drill {id} not sealed within {}s; last state: {live}",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The drill's printable HTML report.
    pub async fn drill_report(&self, id: &str) -> Result<String, DemoError> {
        match self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/drills/{id}/report"),
                None,
            )
            .await?
        {
            (200, Value::String(html)) => Ok(html),
            (status, body) => Err(DemoError::Http(format!(
                "the drill report answered {status}: {body}"
            ))),
        }
    }
}
