//! `coordinator.toml`: where the coordinator listens, its database and its policy, parsed once
//! into typed values; anything wrong is one [`Problem`] naming file, line and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{Duration, Problem, parse_document};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// `sqlite:///var/lib/lifeboat/coordinator.db` (default backend) or `postgres://…`.
    pub database: String,
    /// The organisation's policy (tiers, sites, repositories, systems); each agent receives its
    /// host's part of it.
    pub policy_dir: PathBuf,
    /// Serve plain HTTP on an address that is not loopback (behind a TLS-terminating proxy
    /// only). Without it and without `[tls]`, a non-loopback `listen` is refused: agent tokens
    /// travel in headers.
    #[serde(default)]
    pub allow_http: bool,
    /// How often the assessment sweep runs, e.g. `"30s"` (the default) or `"5m"`.
    #[serde(default = "default_sweep_every")]
    pub sweep_every: Duration,
    /// Serve HTTPS with this certificate and key (rustls, in the process).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// `[alerts]`: rules' thresholds, webhooks and e-mail (see `alerts::config`).
    #[serde(default)]
    pub alerts: super::alerts::AlertsConfig,
    /// `[drills]`: how the drill orchestrator runs.
    #[serde(default)]
    pub drills: DrillsSection,
}

/// `[drills]`: the drill orchestrator's pace and patience.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrillsSection {
    /// How often running drills are advanced (reports applied, timeouts checked), e.g. `"2s"`.
    #[serde(default = "default_drill_tick")]
    pub tick_every: Duration,
    /// A standby agent silent for longer is lost: the drill tasks it holds fail.
    #[serde(default = "default_agent_lost_after")]
    pub agent_lost_after: Duration,
}

impl Default for DrillsSection {
    fn default() -> Self {
        DrillsSection {
            tick_every: default_drill_tick(),
            agent_lost_after: default_agent_lost_after(),
        }
    }
}

fn default_drill_tick() -> Duration {
    Duration::from_secs(2).unwrap_or(Duration::TEN_MINUTES)
}

fn default_agent_lost_after() -> Duration {
    Duration::from_secs(180).unwrap_or(Duration::TEN_MINUTES)
}

/// `[tls]`: the coordinator's certificate chain and private key, PEM files. The files are read
/// at start and again whenever they change, so a renewed certificate needs no restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate followed by its intermediates.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1); readable by the coordinator's user only.
    pub key_file: PathBuf,
}

fn default_sweep_every() -> Duration {
    Duration::from_secs(30).unwrap_or(Duration::TEN_MINUTES)
}

impl CoordinatorConfig {
    pub fn load(path: &Path) -> Result<CoordinatorConfig, Problem> {
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message: format!("cannot read the coordinator configuration: {e}"),
            hint: Some("pass --config with the path of coordinator.toml (see deploy/)".into()),
        })?;
        let config: CoordinatorConfig = parse_document(path, &text)?;
        if !config.listen.ip().is_loopback() && !config.allow_http && config.tls.is_none() {
            return Err(Problem {
                file: path.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("listen"))
                    .map_or(0, |n| n + 1),
                column: 1,
                key_path: "listen".into(),
                message: format!(
                    "{} is not loopback and the coordinator serves plain HTTP",
                    config.listen
                ),
                hint: Some(
                    "add a [tls] section with cert-file and key-file, listen on 127.0.0.1 behind a TLS-terminating proxy, or set allow-http = true on a trusted network"
                        .into(),
                ),
            });
        }
        if !(config.database.starts_with("sqlite:") || config.database.starts_with("postgres")) {
            return Err(Problem {
                file: path.to_path_buf(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("database"))
                    .map_or(0, |n| n + 1),
                column: 1,
                key_path: "database".into(),
                message: "database must be a sqlite:// or postgres:// URL".into(),
                hint: Some("write database = \"sqlite:///var/lib/lifeboat/coordinator.db\"".into()),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_in_deploy_loads_and_bad_values_are_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/coordinator.toml");
        let c = CoordinatorConfig::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert!(c.listen.ip().is_loopback() && c.database.starts_with("sqlite:"));

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("coordinator.toml");
        std::fs::write(
            &bad,
            "listen = \"0.0.0.0:8443\"\ndatabase = \"sqlite:///x.db\"\npolicy-dir = \"/p\"\n",
        )
        .unwrap();
        let p = CoordinatorConfig::load(&bad).unwrap_err();
        assert_eq!((p.line, p.key_path.as_str()), (1, "listen"), "{p}");
        std::fs::write(
            &bad,
            "listen = \"127.0.0.1:8443\"\ndatabase = \"mysql://u:hunter2@h/db\"\npolicy-dir = \"/p\"\n",
        )
        .unwrap();
        let p = CoordinatorConfig::load(&bad).unwrap_err();
        assert_eq!(p.key_path, "database", "{p}");
        assert!(!p.to_string().contains("hunter2"), "{p}");
        std::fs::write(&bad, "listen = \"127.0.0.1:8443\"\ndatabse = \"x\"\n").unwrap();
        let p = CoordinatorConfig::load(&bad).unwrap_err();
        assert_eq!(p.key_path, "databse", "{p}");
    }

    #[test]
    fn the_sweep_runs_every_30s_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coordinator.toml");
        let base =
            "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:///x.db\"\npolicy-dir = \"/p\"\n";
        std::fs::write(&path, base).unwrap();
        let c = CoordinatorConfig::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(c.sweep_every.as_std(), std::time::Duration::from_secs(30));
        std::fs::write(&path, format!("{base}sweep-every = \"2s\"\n")).unwrap();
        let c = CoordinatorConfig::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(c.sweep_every.as_std(), std::time::Duration::from_secs(2));
        std::fs::write(&path, format!("{base}sweep-every = \"0s\"\n")).unwrap();
        let p = CoordinatorConfig::load(&path).unwrap_err();
        assert_eq!((p.line, p.key_path.as_str()), (4, "sweep-every"), "{p}");
    }
}
