//! Secrets and where they come from.
//!
//! A policy never holds a secret, only a [`SecretSource`]: an environment variable, a file or a
//! command. [`Secret`] is the resolved value; its `Debug` and `Display` are redacted so that a
//! secret cannot reach a log line, an error message or a report by accident. This module must not
//! log, and its errors name the *source* (variable name, file path, command), never the value.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a secret is read from. Deserialised from `{ env = "VAR" }`, `{ file = "/path" }` or
/// `{ command = ["prog", "arg"] }`; a plain string is refused as an inline secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSource {
    /// The value of an environment variable of the lifeboat process.
    Env(String),
    /// The contents of a file (trailing newline removed). Must not be readable by group or others.
    File(PathBuf),
    /// The standard output of a command (trailing newline removed), run without a shell.
    Command(Vec<String>),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Command(argv) => {
                write!(
                    f,
                    "command `{}`",
                    argv.first().map(String::as_str).unwrap_or("")
                )
            }
        }
    }
}

/// The hint printed wherever an inline secret is refused.
pub const INLINE_SECRET_HINT: &str = "write { env = \"VAR\" }, { file = \"/path\" } or \
     { command = [\"prog\", \"arg\"] } instead of the secret itself";

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        struct Raw {
            env: Option<String>,
            file: Option<PathBuf>,
            command: Option<Vec<String>>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret source: { env = \"VAR\" }, { file = \"/path\" } or { command = [...] }")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretSource, E> {
                Err(E::custom(format!(
                    "inline secrets are not allowed; {INLINE_SECRET_HINT}"
                )))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretSource, A::Error> {
                let raw = Raw::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                match (raw.env, raw.file, raw.command) {
                    (Some(var), None, None) if !var.is_empty() => Ok(SecretSource::Env(var)),
                    (None, Some(path), None) if path.is_absolute() => Ok(SecretSource::File(path)),
                    (None, Some(path), None) => Err(serde::de::Error::custom(format!(
                        "secret file path {} must be absolute",
                        path.display()
                    ))),
                    (None, None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => {
                        Ok(SecretSource::Command(argv))
                    }
                    _ => Err(serde::de::Error::custom(
                        "a secret source needs exactly one non-empty key of env, file or command",
                    )),
                }
            }
        }
        de.deserialize_any(V)
    }
}

/// A resolved secret. Never printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere (e.g. typed at a prompt).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is handed to the library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be resolved. Names the source, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set; export it or change the password source")]
    EnvMissing(String),
    #[error("secret file {path} cannot be read: {reason}")]
    FileUnreadable { path: PathBuf, reason: String },
    #[error("secret file {0} is readable by group or others; run `chmod 600 {0}`")]
    FileTooOpen(PathBuf),
    #[error("secret command `{program}` failed: {reason}")]
    CommandFailed { program: String, reason: String },
    #[error("{0} is empty")]
    Empty(String),
}

/// How long a secret command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl SecretSource {
    /// Reads the secret. Blocking (file and process I/O): call from a blocking context.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| SecretError::EnvMissing(var.clone()))?
            }
            SecretSource::File(path) => read_private_file(path)?,
            SecretSource::Command(argv) => run_command(argv)?,
        };
        let value = value.strip_suffix('\n').unwrap_or(&value);
        let value = value.strip_suffix('\r').unwrap_or(value);
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value.to_string()))
    }
}

fn read_private_file(path: &Path) -> Result<String, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
        path: path.to_path_buf(),
        reason: e.kind().to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(SecretError::FileTooOpen(path.to_path_buf()));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(path).map_err(unreadable)
}

fn run_command(argv: &[String]) -> Result<String, SecretError> {
    let program = argv.first().cloned().unwrap_or_default();
    let failed = |reason: String| SecretError::CommandFailed {
        program: program.clone(),
        reason,
    };
    let mut child = Command::new(&program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(e.kind().to_string()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no stdout".into()))?;
    // Read on a thread so that a command that never exits is killed after the timeout.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| failed(e.kind().to_string()))? {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "timed out after {}s",
                    COMMAND_TIMEOUT.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = reader
        .join()
        .map_err(|_| failed("output reader panicked".into()))?
        .map_err(|e| failed(e.kind().to_string()))?;
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        password: SecretSource,
    }

    #[test]
    fn inline_secret_is_refused_with_a_hint() {
        let err = toml::from_str::<Holder>("password = \"hunter2\"").unwrap_err();
        assert!(
            err.message().contains("inline secrets are not allowed"),
            "{err}"
        );
        assert!(!err.message().contains("hunter2"));
    }

    #[test]
    fn sources_parse() {
        let h: Holder = toml::from_str("password = { env = \"PW\" }").unwrap();
        assert_eq!(h.password, SecretSource::Env("PW".into()));
        let h: Holder = toml::from_str("password = { command = [\"pass\", \"x\"] }").unwrap();
        assert_eq!(
            h.password,
            SecretSource::Command(vec!["pass".into(), "x".into()])
        );
        assert!(toml::from_str::<Holder>("password = { env = \"A\", file = \"/b\" }").is_err());
        assert!(toml::from_str::<Holder>("password = { file = \"rel\" }").is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }

    #[test]
    fn world_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretSource::File(path.clone()).resolve().unwrap_err();
        assert!(matches!(err, SecretError::FileTooOpen(_)));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            SecretSource::File(path).resolve().unwrap().expose(),
            "hunter2"
        );
    }

    #[test]
    fn command_output_is_the_secret() {
        let src = SecretSource::Command(vec!["printf".into(), "s3cret\\n".into()]);
        assert_eq!(src.resolve().unwrap().expose(), "s3cret");
        let err = SecretSource::Command(vec!["false".into()])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("`false` failed"));
    }
}
