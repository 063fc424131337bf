//! `agent.toml`: the agent's own settings (who it is, where its policy comes from, its limits),
//! parsed once into typed values. Anything wrong is one [`Problem`] naming file, line and key.
//!
//! The policy itself (what to protect and how) is not here: it comes from the coordinator as
//! an assignment, or from a local policy directory when no coordinator is configured.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::link::LinkPolicy;
use crate::policy::{Problem, parse_document};
use crate::secret::SecretSource;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AgentConfig {
    /// The host this agent protects: systems whose `host` equals it are assigned to it.
    /// Default: the machine's host name.
    #[serde(default)]
    pub host: Option<String>,
    /// The site the host is at (sent at enrolment; systems of other sites are refused).
    pub site: String,
    /// Cache, locks, run journal, spool, cached assignment, schedule history.
    pub state_dir: PathBuf,
    /// Stand-alone mode: the policy directory to load (ignored when `[coordinator]` is set).
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// How many jobs may run at once on this host (different systems; one system never runs
    /// two jobs at once).
    #[serde(default = "default_concurrency")]
    pub max_concurrent_jobs: usize,
    /// Each scheduled run starts up to this long after its slot (stable per host and system),
    /// so that hundreds of branches do not start at the same second.
    #[serde(default = "default_jitter", deserialize_with = "duration")]
    pub jitter: Duration,
    /// On SIGTERM, running jobs get this long to finish before they are aborted.
    #[serde(default = "default_grace", deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// How often the policy (local directory or coordinator) is looked at for changes.
    #[serde(default = "default_reload", deserialize_with = "duration")]
    pub reload_every: Duration,
    #[serde(default)]
    pub coordinator: Option<CoordinatorConfig>,
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// The branch link: bandwidth by time of day and allowed windows for off-site traffic.
    #[serde(default)]
    pub link: LinkPolicy,
}

/// How to reach the coordinator.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// e.g. `https://coordinator.example.bank:8443`
    pub url: url::Url,
    /// CA certificate (PEM) of a private PKI, in addition to the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The agent's own token. Default: the file `<state-dir>/agent/token`, written at enrolment.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// One-time enrolment token, used when the agent has no token yet.
    #[serde(default)]
    pub enrol_token: Option<SecretSource>,
    #[serde(default = "default_heartbeat", deserialize_with = "duration")]
    pub heartbeat_every: Duration,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Allow plain `http://` to a host that is not loopback (never do this over a WAN).
    #[serde(default)]
    pub allow_http: bool,
}

/// Bounds of the local spool of run records. Failure records are never dropped, even over
/// the bounds; successful ones are dropped oldest first.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SpoolConfig {
    #[serde(default = "default_spool_records")]
    pub max_records: usize,
    #[serde(default = "default_spool_bytes", deserialize_with = "byte_size")]
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_records: default_spool_records(),
            max_bytes: default_spool_bytes(),
        }
    }
}

/// The Prometheus endpoint; loopback only unless `allow-remote` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetricsConfig {
    /// e.g. `127.0.0.1:9475`
    pub listen: SocketAddr,
    #[serde(default)]
    pub allow_remote: bool,
}

fn default_concurrency() -> usize {
    2
}
fn default_jitter() -> Duration {
    dur("5m")
}
fn default_grace() -> Duration {
    dur("2m")
}
fn default_reload() -> Duration {
    dur("1m")
}
fn default_heartbeat() -> Duration {
    dur("1m")
}
fn default_timeout() -> Duration {
    dur("30s")
}
fn default_spool_records() -> usize {
    10_000
}
fn default_spool_bytes() -> u64 {
    256 << 20
}

/// A constant duration written the humantime way.
fn dur(text: &str) -> Duration {
    // The literals above are valid; a zero duration would show in the tests if one were not.
    humantime::parse_duration(text).unwrap_or_default()
}

/// A duration written the humantime way (`"90s"`, `"5m"`, `"0s"`).
fn duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "\"{text}\" is not a duration ({e}); write e.g. \"30s\", \"5m\" or \"2h\""
        ))
    })
}

fn byte_size<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(de)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(s) => bytesize::ByteSize::from_str(s.trim())
            .map(|b| b.as_u64())
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "\"{s}\" is not a size; write e.g. \"256 MiB\" or \"1 GiB\""
                ))
            }),
    }
}

impl AgentConfig {
    /// Reads and checks `path`. Besides the syntax, checks the rules across keys.
    pub fn load(path: &Path) -> Result<AgentConfig, Problem> {
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message: format!("cannot read the agent configuration: {e}"),
            hint: Some("pass --config with the path of agent.toml (see deploy/agent.toml)".into()),
        })?;
        let config: AgentConfig = parse_document(path, &text)?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), Problem> {
        let problem = |key: &str, message: String, hint: &str| Problem {
            file: path.to_path_buf(),
            line: line_of(path, key),
            column: 1,
            key_path: key.to_string(),
            message,
            hint: Some(hint.to_string()),
        };
        if self.coordinator.is_none() && self.policy_dir.is_none() {
            return Err(problem(
                "policy-dir",
                "neither [coordinator] nor policy-dir is set: the agent has no policy".into(),
                "set policy-dir = \"/etc/lifeboat/policies\" to run stand-alone, or a [coordinator] table",
            ));
        }
        if self.max_concurrent_jobs == 0 {
            return Err(problem(
                "max-concurrent-jobs",
                "max-concurrent-jobs must be at least 1".into(),
                "write max-concurrent-jobs = 2",
            ));
        }
        if !self.state_dir.is_absolute() {
            return Err(problem(
                "state-dir",
                format!(
                    "state-dir {} is not an absolute path",
                    self.state_dir.display()
                ),
                "write e.g. state-dir = \"/var/lib/lifeboat\"",
            ));
        }
        if let Some(m) = &self.metrics
            && !m.listen.ip().is_loopback()
            && !m.allow_remote
        {
            return Err(problem(
                "metrics.listen",
                format!(
                    "metrics would listen on {}, which is not loopback",
                    m.listen
                ),
                "listen on 127.0.0.1, or set metrics.allow-remote = true behind a firewall",
            ));
        }
        if let Some(c) = &self.coordinator {
            let loopback = c.url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            if c.url.scheme() == "http" && !loopback && !c.allow_http {
                return Err(problem(
                    "coordinator.url",
                    format!("{} is plain HTTP to a host that is not loopback", c.url),
                    "use https://, or set coordinator.allow-http = true on a trusted network",
                ));
            }
            if !matches!(c.url.scheme(), "http" | "https") {
                return Err(problem(
                    "coordinator.url",
                    format!("{} is not an http(s) URL", c.url),
                    "write e.g. url = \"https://coordinator.example.bank:8443\"",
                ));
            }
        }
        Ok(())
    }

    /// The host name systems are matched against.
    pub fn host(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(crate::engine::local_hostname)
    }

    /// `<state-dir>/agent`: the agent's own files (history, assignment cache, spool, token).
    pub fn agent_dir(&self) -> PathBuf {
        self.state_dir.join("agent")
    }
}

/// The 1-based line on which a top-level key (or `table.key`) is written, for rule problems
/// found after parsing; 0 when it is not written at all.
fn line_of(path: &Path, key: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let leaf = key.rsplit('.').next().unwrap_or(key);
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(leaf) && l[leaf.len()..].trim_start().starts_with('=')
        })
        .map_or(0, |n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AgentConfig, Problem> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        AgentConfig::load(&path)
    }

    const MINIMAL: &str = "site = \"linfen\"\nstate-dir = \"/var/lib/lifeboat\"\npolicy-dir = \"/etc/lifeboat/policies\"\n";

    #[test]
    fn minimal_file_gets_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.max_concurrent_jobs, 2);
        assert_eq!(c.jitter.as_secs(), 300);
        assert_eq!(c.spool.max_records, 10_000);
        assert_eq!(c.spool.max_bytes, 256 << 20);
        assert!(c.coordinator.is_none() && c.metrics.is_none());
    }

    #[test]
    fn errors_name_line_and_key() {
        let p = load(&format!("{MINIMAL}jiter = \"1m\"\n")).unwrap_err();
        assert_eq!((p.line, p.key_path.as_str()), (4, "jiter"), "{p}");
        let p = load(&format!("{MINIMAL}[spool]\nmax-bytes = \"lots\"\n")).unwrap_err();
        assert_eq!((p.line, p.key_path.as_str()), (5, "spool.max-bytes"), "{p}");
        assert!(p.message.contains("not a size"), "{p}");
        let p = load(&format!("{MINIMAL}[metrics]\nlisten = \"0.0.0.0:9475\"\n")).unwrap_err();
        assert_eq!(p.key_path, "metrics.listen", "{p}");
        let p = load("site = \"x\"\nstate-dir = \"/s\"\n").unwrap_err();
        assert!(p.message.contains("no policy"), "{p}");
        let p = load(&format!(
            "{MINIMAL}[coordinator]\nurl = \"http://10.0.0.1:8080\"\n"
        ))
        .unwrap_err();
        assert_eq!(p.key_path, "coordinator.url", "{p}");
        let p = load(&format!(
            "{MINIMAL}[coordinator]\nurl = \"https://c:8443\"\ntoken = \"abc\"\n"
        ))
        .unwrap_err();
        assert!(p.message.contains("inline secrets"), "{p}");
        assert!(!p.to_string().contains("abc"), "{p}");
    }

    #[test]
    fn the_example_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agent.toml");
        let c = AgentConfig::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(c.site, "linfen");
        let cc = c.coordinator.as_ref().unwrap();
        assert_eq!(cc.url.scheme(), "https");
        assert!(cc.enrol_token.is_some());
        assert_eq!(c.metrics.as_ref().unwrap().listen.port(), 9475);
        assert!(!c.link.windows.is_empty());
    }
}
