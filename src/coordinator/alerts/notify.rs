//! Delivery of alert notifications: webhooks over HTTPS (`reqwest`, rustls) in four body
//! shapes, and e-mail over SMTP (`lettre`, rustls). Each send has a timeout and a bounded number
//! of attempts; what still fails is reported to the caller, which retries at its next
//! evaluation.
//!
//! Webhook URLs (WeCom, DingTalk and Slack carry their key in them) and SMTP passwords are
//! [`Secret`]s: resolved once at start from their sources, handed to the HTTP or SMTP client
//! and nowhere else. Logs and errors name the *channel*, never the URL or the password
//! (`reqwest` errors are stripped of their URL). This module decides nothing about which alert
//! to send; [`super`] does.
//!
//! # The generic webhook body
//!
//! ```json
//! {
//!   "status": "firing",            // or "resolved"
//!   "rule": "rpo-breached",
//!   "subject": "fin-db/site-loss",
//!   "severity": "critical",        // or "warning"
//!   "summary": "fin-db (T1): site-loss RPO breached, exposure 9h 12m against 4h",
//!   "detail": "site-loss: breached — exposure 9h 12m against a 4h target (5h 12m over); …",
//!   "since": "2026-03-01T11:00:00Z",   // firing: since when; resolved: when it resolved
//!   "at": "2026-03-01T11:00:03Z",      // when this notification was made
//!   "reminder": false,                 // a repeat of a firing alert (repeat-every)
//!   "coordinator": "https://lifeboat.bank.example"   // null when coordinator-url is unset
//! }
//! ```
//!
//! WeCom, DingTalk and Slack get the same facts as markdown text (see [`Notification::text`]).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};

use super::config::{AlertsConfig, SmtpTls, WebhookKind};
use super::rules::{Rule, Severity};
use crate::coordinator::store::AlertStatus;
use crate::secret::{Secret, SecretError, SecretSource};

/// How long one webhook request or one SMTP conversation may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per notification and channel within one evaluation.
const ATTEMPTS: u32 = 3;
/// The pause before the second attempt; doubled before each further one.
const BACKOFF: Duration = Duration::from_millis(500);
/// The name of the e-mail channel in logs and in the evaluator's bookkeeping.
pub const EMAIL_CHANNEL: &str = "email";

/// One notification about one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub status: AlertStatus,
    pub rule: Rule,
    pub subject: String,
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    /// Firing: since when it fires. Resolved: when it resolved.
    pub since: Timestamp,
    /// When this notification was made.
    pub at: Timestamp,
    /// A repeat of an alert still firing (`repeat-every`).
    pub reminder: bool,
}

impl Notification {
    fn status_str(&self) -> &'static str {
        self.status.as_str()
    }

    /// `[FIRING] critical rpo-breached fin-db/site-loss` or `[RESOLVED] …`: a chat title and an
    /// e-mail subject.
    pub fn title(&self) -> String {
        let status = match (self.status, self.reminder) {
            (AlertStatus::Firing, false) => "FIRING",
            (AlertStatus::Firing, true) => "STILL FIRING",
            (AlertStatus::Resolved, _) => "RESOLVED",
        };
        format!(
            "[{status}] {} {} {}",
            self.severity, self.rule, self.subject
        )
    }

    /// The notification as markdown text (WeCom, DingTalk, Slack's mrkdwn reads it well enough),
    /// and as the e-mail body.
    pub fn text(&self, coordinator: Option<&url::Url>) -> String {
        let mut text = format!(
            "**{}**\n\n{}\n\n{}\n\n{} {}",
            self.title(),
            self.summary,
            self.detail,
            match self.status {
                AlertStatus::Firing => "firing since",
                AlertStatus::Resolved => "resolved at",
            },
            self.since
        );
        if let Some(url) = coordinator {
            text.push_str(&format!("\n\nlifeboat coordinator: {url}"));
        }
        text
    }

    /// The body of a webhook of `kind`.
    pub fn body(&self, kind: WebhookKind, coordinator: Option<&url::Url>) -> Value {
        match kind {
            WebhookKind::Generic => json!({
                "status": self.status_str(),
                "rule": self.rule.as_str(),
                "subject": self.subject,
                "severity": self.severity.as_str(),
                "summary": self.summary,
                "detail": self.detail,
                "since": self.since,
                "at": self.at,
                "reminder": self.reminder,
                "coordinator": coordinator.map(url::Url::as_str),
            }),
            WebhookKind::Wecom => json!({
                "msgtype": "markdown",
                "markdown": { "content": self.text(coordinator) },
            }),
            WebhookKind::Dingtalk => json!({
                "msgtype": "markdown",
                "markdown": { "title": self.title(), "text": self.text(coordinator) },
            }),
            WebhookKind::Slack => json!({ "text": self.text(coordinator) }),
        }
    }
}

/// Why the channels could not be set up at start. Names the channel and the secret's source,
/// never a value.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("alert channel {channel}: {source}")]
    Secret {
        channel: String,
        source: SecretError,
    },
    #[error("alert channel {channel}: the URL from {from} is not an http(s) URL")]
    BadUrl { channel: String, from: String },
    #[error("two alert channels are named {0}; give each a distinct name")]
    Duplicate(String),
    #[error("alert channel {channel}: {message}")]
    Setup { channel: String, message: String },
}

/// One configured destination.
enum Channel {
    Webhook {
        name: String,
        kind: WebhookKind,
        url: Secret,
    },
    Email {
        // Boxed: the transport (with its TLS settings) dwarfs a webhook.
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

impl Channel {
    fn name(&self) -> &str {
        match self {
            Channel::Webhook { name, .. } => name,
            Channel::Email { .. } => EMAIL_CHANNEL,
        }
    }
}

/// Every configured channel, ready to send.
pub struct Notifier {
    channels: Vec<Channel>,
    http: reqwest::Client,
    coordinator: Option<url::Url>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("channels", &self.names())
            .finish_non_exhaustive()
    }
}

/// Reads a secret on the blocking pool (files, environment).
async fn resolve(channel: &str, source: &SecretSource) -> Result<Secret, ChannelError> {
    let s = source.clone();
    tokio::task::spawn_blocking(move || s.resolve())
        .await
        .map_err(|e| ChannelError::Setup {
            channel: channel.to_string(),
            message: format!("reading its secret failed: {e}"),
        })?
        .map_err(|source| ChannelError::Secret {
            channel: channel.to_string(),
            source,
        })
}

impl Notifier {
    /// Resolves every channel's secrets and builds its client.
    pub async fn new(config: &AlertsConfig) -> Result<Notifier, ChannelError> {
        let mut seen = BTreeSet::new();
        for name in config.channel_names() {
            if !seen.insert(name) {
                return Err(ChannelError::Duplicate(name.to_string()));
            }
        }
        let mut channels = Vec::new();
        for w in &config.webhook {
            let url = resolve(&w.name, &w.url).await?;
            let parsed = url::Url::parse(url.expose().trim()).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(ChannelError::BadUrl {
                    channel: w.name.clone(),
                    from: w.url.to_string(),
                });
            }
            channels.push(Channel::Webhook {
                name: w.name.clone(),
                kind: w.kind,
                url: Secret::new(url.expose().trim()),
            });
        }
        if let Some(e) = &config.email {
            let setup = |message: String| ChannelError::Setup {
                channel: EMAIL_CHANNEL.into(),
                message,
            };
            let builder = match e.tls {
                SmtpTls::None => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.server.as_str())
                }
                SmtpTls::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.server)
                        .map_err(|err| setup(err.to_string()))?
                }
                SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.server)
                    .map_err(|err| setup(err.to_string()))?,
            };
            let mut builder = builder.port(e.port).timeout(Some(TIMEOUT));
            if let Some((user, source)) = &e.auth {
                let password = resolve(EMAIL_CHANNEL, source).await?;
                builder =
                    builder.credentials(Credentials::new(user.clone(), password.expose().into()));
            }
            channels.push(Channel::Email {
                transport: Box::new(builder.build()),
                from: e.from.clone(),
                to: e.to.clone(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirect would carry the body elsewhere; receivers answer where they are.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ChannelError::Setup {
                channel: "webhooks".into(),
                message: e.without_url().to_string(),
            })?;
        Ok(Notifier {
            channels,
            http,
            coordinator: config.coordinator_url.clone(),
        })
    }

    /// The channels' names.
    pub fn names(&self) -> BTreeSet<String> {
        self.channels.iter().map(|c| c.name().to_string()).collect()
    }

    /// Sends `n` to the channels named in `to`, all at once; the names of those that failed
    /// after every attempt (each failure logged with the channel's name).
    pub async fn send(&self, n: &Notification, to: &BTreeSet<String>) -> BTreeSet<String> {
        let sends = self
            .channels
            .iter()
            .filter(|c| to.contains(c.name()))
            .map(|c| async move {
                match self.send_one(c, n).await {
                    Ok(()) => None,
                    Err(why) => {
                        tracing::warn!(
                            channel = c.name(),
                            rule = n.rule.as_str(),
                            subject = %n.subject,
                            "alert notification not delivered (retried at the next evaluation): {why}"
                        );
                        Some(c.name().to_string())
                    }
                }
            });
        join_all(sends).await.into_iter().flatten().collect()
    }

    async fn send_one(&self, channel: &Channel, n: &Notification) -> Result<(), String> {
        let mut pause = BACKOFF;
        let mut attempt = 1;
        loop {
            let result = match channel {
                Channel::Webhook { kind, url, .. } => self.post(*kind, url, n).await,
                Channel::Email {
                    transport,
                    from,
                    to,
                } => self.mail(transport, from, to, n).await,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Failure { message, retry }) if !retry || attempt >= ATTEMPTS => {
                    return Err(format!("{message} (attempt {attempt})"));
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
            }
        }
    }

    async fn post(&self, kind: WebhookKind, url: &Secret, n: &Notification) -> Result<(), Failure> {
        let response = self
            .http
            .post(url.expose())
            .json(&n.body(kind, self.coordinator.as_ref()))
            .send()
            .await
            .map_err(|e| Failure::retry(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let retry = status.is_server_error() || status.as_u16() == 429;
            return Err(Failure {
                message: format!("the receiver answered HTTP {status}"),
                retry,
            });
        }
        // WeCom and DingTalk answer 200 with an error code in the body.
        if matches!(kind, WebhookKind::Wecom | WebhookKind::Dingtalk) {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body.get("errcode").and_then(Value::as_i64).unwrap_or(0);
            if code != 0 {
                let message: String = body
                    .get("errmsg")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect();
                return Err(Failure {
                    message: format!("the receiver refused it: errcode {code} {message}"),
                    retry: false,
                });
            }
        }
        Ok(())
    }

    async fn mail(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        from: &Mailbox,
        to: &[Mailbox],
        n: &Notification,
    ) -> Result<(), Failure> {
        let mut message = Message::builder()
            .from(from.clone())
            .subject(format!("lifeboat {}", n.title()))
            .header(ContentType::TEXT_PLAIN);
        for mailbox in to {
            message = message.to(mailbox.clone());
        }
        let message = message
            .body(n.text(self.coordinator.as_ref()))
            .map_err(|e| Failure {
                message: format!("cannot build the message: {e}"),
                retry: false,
            })?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| Failure {
                retry: !e.is_permanent(),
                message: format!("SMTP: {e}"),
            })
    }
}

/// One failed attempt: what to log, and whether another attempt may help.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: String) -> Self {
        Failure {
            message,
            retry: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(status: AlertStatus) -> Notification {
        Notification {
            status,
            rule: Rule::RpoBreached,
            subject: "fin-db/site-loss".into(),
            severity: Severity::Critical,
            summary: "fin-db (T1): site-loss RPO breached".into(),
            detail: "site-loss: breached".into(),
            since: "2026-03-01T11:00:00Z".parse().unwrap(),
            at: "2026-03-01T11:00:03Z".parse().unwrap(),
            reminder: false,
        }
    }

    #[test]
    fn each_kind_has_its_documented_body() {
        let url: url::Url = "https://lifeboat.bank.example".parse().unwrap();
        let firing = n(AlertStatus::Firing);
        assert_eq!(
            firing.body(WebhookKind::Generic, Some(&url)),
            json!({
                "status": "firing",
                "rule": "rpo-breached",
                "subject": "fin-db/site-loss",
                "severity": "critical",
                "summary": "fin-db (T1): site-loss RPO breached",
                "detail": "site-loss: breached",
                "since": "2026-03-01T11:00:00Z",
                "at": "2026-03-01T11:00:03Z",
                "reminder": false,
                "coordinator": "https://lifeboat.bank.example/",
            })
        );
        let text = "**[FIRING] critical rpo-breached fin-db/site-loss**\n\n\
                    fin-db (T1): site-loss RPO breached\n\nsite-loss: breached\n\n\
                    firing since 2026-03-01T11:00:00Z\n\n\
                    lifeboat coordinator: https://lifeboat.bank.example/";
        assert_eq!(
            firing.body(WebhookKind::Wecom, Some(&url)),
            json!({ "msgtype": "markdown", "markdown": { "content": text } })
        );
        assert_eq!(
            firing.body(WebhookKind::Dingtalk, Some(&url)),
            json!({ "msgtype": "markdown", "markdown": {
                "title": "[FIRING] critical rpo-breached fin-db/site-loss", "text": text } })
        );
        assert_eq!(
            firing.body(WebhookKind::Slack, Some(&url)),
            json!({ "text": text })
        );
        let resolved = n(AlertStatus::Resolved);
        assert_eq!(
            resolved.body(WebhookKind::Generic, None)["status"],
            "resolved"
        );
        assert!(
            resolved
                .text(None)
                .ends_with("resolved at 2026-03-01T11:00:00Z")
        );
        let reminder = Notification {
            reminder: true,
            ..n(AlertStatus::Firing)
        };
        assert!(reminder.title().starts_with("[STILL FIRING]"));
    }
}
