//! `[alerts]` of `coordinator.toml`: the rules' thresholds, the webhooks and the e-mail channel,
//! parsed once into typed values (kebab-case, unknown keys refused; problems carry file, line
//! and key through [`crate::policy::parse_document`]).
//!
//! A webhook URL (WeCom, DingTalk and Slack put their key in it) and an SMTP password are
//! secrets: the file only says where to read them (`url-env`/`url-file`,
//! `password-env`/`password-file`), never the value. Resolving them is [`super::notify`]'s job,
//! at start; nothing here reads the environment or a file.

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::assess::Percent;
use crate::policy::Duration;
use crate::secret::SecretSource;

/// `[alerts]`. Every key is optional; without a channel, alerts are still evaluated, remembered
/// and listed (`GET /api/v1/alerts`), only not sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where people reach this coordinator (`https://lifeboat.bank.example`); put into every
    /// notification so that a receiver can link back.
    #[serde(default)]
    pub coordinator_url: Option<url::Url>,
    /// `rpo-breach-predicted` fires when the predicted breach is within this share of the
    /// target (default 25: a quarter of the RPO).
    #[serde(default)]
    pub predict_within_percent: Option<Percent>,
    /// Tiers whose RPO is at most this get `critical` alerts for a breach and for their agent
    /// being offline; others get `warning` (default 4h).
    #[serde(default)]
    pub critical_rpo: Option<Duration>,
    /// `spool-growing` fires when an agent reports more undelivered records than this
    /// (default 1000) …
    #[serde(default)]
    pub spool_pending_over: Option<u64>,
    /// … or when its oldest undelivered record is older than this (default 6h).
    #[serde(default)]
    pub spool_oldest_over: Option<Duration>,
    /// Remind of an alert still firing this long after it was last notified (default: never).
    #[serde(default)]
    pub repeat_every: Option<Duration>,
    /// `[[alerts.webhook]]`, any number.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// `[alerts.email]`, at most one (it may list several recipients).
    #[serde(default)]
    pub email: Option<EmailConfig>,
}

/// The body shape a webhook receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookKind {
    /// lifeboat's own JSON object (see [`super::notify`]).
    Generic,
    /// WeCom (企业微信) group robot: `{"msgtype":"markdown","markdown":{"content":…}}`.
    Wecom,
    /// DingTalk (钉钉) custom robot: `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`.
    Dingtalk,
    /// Slack incoming webhook (and Mattermost, Rocket.Chat …): `{"text":…}`.
    Slack,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Generic => "generic",
            WebhookKind::Wecom => "wecom",
            WebhookKind::Dingtalk => "dingtalk",
            WebhookKind::Slack => "slack",
        }
    }
}

/// `[[alerts.webhook]]`: a name for the logs, a body shape and where its URL is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawWebhook")]
pub struct WebhookConfig {
    pub name: String,
    pub kind: WebhookKind,
    /// The URL, a secret.
    pub url: SecretSource,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawWebhook {
    name: String,
    kind: WebhookKind,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
}

impl TryFrom<RawWebhook> for WebhookConfig {
    type Error = String;
    fn try_from(raw: RawWebhook) -> Result<Self, String> {
        check_name(&raw.name)?;
        Ok(WebhookConfig {
            url: secret_source("url", raw.url_env, raw.url_file)?,
            name: raw.name,
            kind: raw.kind,
        })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// `[alerts.email]`: one SMTP server, a sender and recipients.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawEmail")]
pub struct EmailConfig {
    /// The SMTP server's host name (checked against its certificate with TLS).
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// The login and where its password is read from; `None`: no authentication.
    pub auth: Option<(String, SecretSource)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEmail {
    server: String,
    port: Option<u16>,
    #[serde(default)]
    tls: SmtpTls,
    from: String,
    to: Vec<String>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

impl TryFrom<RawEmail> for EmailConfig {
    type Error = String;
    fn try_from(raw: RawEmail) -> Result<Self, String> {
        if raw.server.trim().is_empty() || raw.server.contains(['/', ' ', ':']) {
            return Err(format!(
                "server {:?} is not a host name; write the port as `port`",
                raw.server
            ));
        }
        let mailbox = |s: &str| {
            s.parse::<Mailbox>()
                .map_err(|e| format!("{s:?} is not an e-mail address ({e})"))
        };
        if raw.to.is_empty() {
            return Err("`to` lists no recipient".into());
        }
        let auth = match (raw.username, raw.password_env, raw.password_file) {
            (None, None, None) => None,
            (Some(user), env, file) => Some((user, secret_source("password", env, file)?)),
            (None, _, _) => return Err("a password needs a `username`".into()),
        };
        Ok(EmailConfig {
            port: raw.port.unwrap_or(raw.tls.default_port()),
            tls: raw.tls,
            from: mailbox(&raw.from)?,
            to: raw
                .to
                .iter()
                .map(|s| mailbox(s))
                .collect::<Result<_, _>>()?,
            server: raw.server,
            auth,
        })
    }
}

/// Exactly one of `<what>-env` and `<what>-file`; the file path must be absolute.
fn secret_source(
    what: &str,
    env: Option<String>,
    file: Option<PathBuf>,
) -> Result<SecretSource, String> {
    match (env, file) {
        (Some(var), None) if !var.is_empty() => Ok(SecretSource::Env(var)),
        (None, Some(path)) if path.is_absolute() => Ok(SecretSource::File(path)),
        (None, Some(path)) => Err(format!(
            "{what}-file {} must be an absolute path",
            path.display()
        )),
        _ => Err(format!(
            "write exactly one of {what}-env (a variable name) and {what}-file (a path); the \
             {what} itself is a secret and never goes into this file"
        )),
    }
}

/// A channel name is for logs and metrics: short, plain.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "channel name {name:?}: use 1 to 64 characters a-z, A-Z, 0-9, '.', '_' or '-'"
        ))
    }
}

impl AlertsConfig {
    /// The share of the target within which a breach is predicted: 25 % unless configured.
    pub fn predict_within_percent(&self) -> u8 {
        self.predict_within_percent.map_or(25, Percent::get)
    }

    pub fn critical_rpo(&self) -> std::time::Duration {
        self.critical_rpo
            .map_or(std::time::Duration::from_secs(4 * 3600), Duration::as_std)
    }

    pub fn spool_pending_over(&self) -> u64 {
        self.spool_pending_over.unwrap_or(1000)
    }

    pub fn spool_oldest_over(&self) -> std::time::Duration {
        self.spool_oldest_over
            .map_or(std::time::Duration::from_secs(6 * 3600), Duration::as_std)
    }

    /// Every channel name, to check they are distinct.
    pub fn channel_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.webhook.iter().map(|w| w.name.as_str()).collect();
        if self.email.is_some() {
            names.push("email");
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        alerts: AlertsConfig,
    }

    fn parse(text: &str) -> Result<AlertsConfig, crate::policy::Problem> {
        crate::policy::parse_document::<Doc>(Path::new("coordinator.toml"), text).map(|d| d.alerts)
    }

    #[test]
    fn a_full_section_parses_into_typed_values_with_defaults() {
        let c = parse(
            r#"
[alerts]
coordinator-url = "https://lifeboat.bank.example"
critical-rpo = "1h"
repeat-every = "12h"

[[alerts.webhook]]
name = "ops-wecom"
kind = "wecom"
url-env = "LIFEBOAT_WECOM_URL"

[[alerts.webhook]]
name = "hook"
kind = "generic"
url-file = "/etc/lifeboat/hook-url"

[alerts.email]
server = "smtp.bank.example"
from = "lifeboat <lifeboat@bank.example>"
to = ["dba@bank.example", "ops@bank.example"]
username = "lifeboat"
password-file = "/etc/lifeboat/smtp-password"
"#,
        )
        .unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(c.critical_rpo(), std::time::Duration::from_secs(3600));
        assert_eq!(c.predict_within_percent(), 25);
        assert_eq!(c.spool_pending_over(), 1000);
        assert_eq!(c.webhook.len(), 2);
        assert_eq!(c.webhook[0].kind, WebhookKind::Wecom);
        assert_eq!(
            c.webhook[0].url,
            SecretSource::Env("LIFEBOAT_WECOM_URL".into())
        );
        let email = c.email.as_ref().unwrap();
        assert_eq!((email.tls, email.port), (SmtpTls::Starttls, 587));
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.auth.as_ref().unwrap().0, "lifeboat");
        assert_eq!(c.channel_names(), ["ops-wecom", "hook", "email"]);
        assert!(parse("").unwrap().webhook.is_empty());
    }

    /// `deploy/coordinator.toml` loads as it is, and with its alert examples uncommented.
    #[test]
    fn the_example_in_deploy_parses_with_its_examples_uncommented() {
        use crate::coordinator::config::CoordinatorConfig;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/coordinator.toml");
        let c = CoordinatorConfig::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert!(c.alerts.webhook.is_empty() && c.alerts.email.is_none());
        assert_eq!(
            c.alerts.critical_rpo(),
            std::time::Duration::from_secs(4 * 3600)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with(' ') => rest,
                Some("") => "",
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("coordinator.toml");
        std::fs::write(&copy, uncommented).unwrap();
        let c = CoordinatorConfig::load(&copy).unwrap_or_else(|p| panic!("{p}"));
        let kinds: Vec<_> = c.alerts.webhook.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WebhookKind::Wecom, WebhookKind::Dingtalk]);
        assert_eq!(c.alerts.email.as_ref().unwrap().port, 587);
        assert!(c.alerts.repeat_every.is_some() && c.alerts.coordinator_url.is_some());
    }

    #[test]
    fn problems_name_the_line_and_key() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "[alerts]\nrepeat-evry = \"1h\"\n",
                2,
                "alerts.repeat-evry",
                "unknown field",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nname = \"x\"\nkind = \"teams\"\nurl-env = \"U\"\n",
                4,
                "alerts.webhook[0].kind",
                "unknown variant",
            ),
            (
                // An inline URL is a secret in the file: refused.
                "[alerts]\n[[alerts.webhook]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/KEY\"\n",
                5,
                "alerts.webhook[0].url",
                "unknown field `url`",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nname = \"x\"\nkind = \"slack\"\n",
                0,
                "alerts.webhook[0]",
                "exactly one of url-env",
            ),
            (
                "[alerts.email]\nserver = \"smtp\"\nfrom = \"not an address\"\nto = [\"a@b.example\"]\n",
                0,
                "alerts.email",
                "is not an e-mail address",
            ),
            (
                "[alerts.email]\nserver = \"smtp\"\nfrom = \"a@b.example\"\nto = [\"a@b.example\"]\nusername = \"u\"\n",
                0,
                "alerts.email",
                "exactly one of password-env",
            ),
            (
                "[alerts]\npredict-within-percent = 0\n",
                2,
                "alerts.predict-within-percent",
                "between 1 and 100",
            ),
        ];
        for (text, line, key, message) in cases {
            let p = parse(text).unwrap_err();
            assert_eq!(p.key_path, *key, "{text}: {p}");
            if *line > 0 {
                assert_eq!(p.line, *line, "{text}: {p}");
            } else {
                assert!(p.line > 0, "{text}: {p}");
            }
            assert!(p.to_string().contains(message), "{text}: {p}");
            assert!(!p.to_string().contains("KEY"), "{p}");
        }
    }
}
