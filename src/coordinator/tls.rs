//! The coordinator's HTTPS: loads the `[tls]` certificate chain and private key into a rustls
//! server configuration, and reloads them when the files change (a renewed certificate takes
//! effect without a restart; a broken renewal is logged and the last good pair kept).
//!
//! The key file is read like every other secret file: refused when group or others may read it,
//! and its content never appears in an error or a log line. This module does not serve requests
//! (`server.rs` does) and knows nothing of the API.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;

use super::config::TlsConfig;
use crate::secret::SecretSource;

/// How often the certificate files are looked at for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(60);

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot use the TLS private key: {0}")]
    Key(#[from] crate::secret::SecretError),
    #[error(
        "the TLS certificate {cert} and key {key} do not form a usable pair: {reason}; \
         check that cert-file holds the certificate chain (PEM) and key-file its private key"
    )]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Reads both files. Blocking: call from a blocking context.
fn read_pair(tls: &TlsConfig) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert = std::fs::read(&tls.cert_file).map_err(|e| TlsError::Cert {
        path: tls.cert_file.clone(),
        reason: e.kind().to_string(),
    })?;
    let key = SecretSource::File(tls.key_file.clone()).resolve()?;
    Ok((cert, key.expose().as_bytes().to_vec()))
}

fn pair_error(tls: &TlsConfig, e: &std::io::Error) -> TlsError {
    // rustls' messages name what is wrong ("no private key found", "invalid certificate")
    // without quoting key material.
    TlsError::Pair {
        cert: tls.cert_file.clone(),
        key: tls.key_file.clone(),
        reason: e.to_string(),
    }
}

/// Loads the rustls configuration from `[tls]`.
pub async fn load(tls: &TlsConfig) -> Result<RustlsConfig, TlsError> {
    let owned = tls.clone();
    let (cert, key) = tokio::task::spawn_blocking(move || read_pair(&owned))
        .await
        .map_err(|e| TlsError::Cert {
            path: tls.cert_file.clone(),
            reason: e.to_string(),
        })??;
    RustlsConfig::from_pem(cert, key)
        .await
        .map_err(|e| pair_error(tls, &e))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads `config` on SIGHUP and whenever either file's modification time changes; runs until
/// dropped.
pub async fn watch(tls: TlsConfig, config: RustlsConfig) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let stamp = |tls: &TlsConfig| (modified(&tls.cert_file), modified(&tls.key_file));
    let mut last = stamp(&tls);
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.tick().await;
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            } } => true,
        };
        let now = stamp(&tls);
        if now == last && !forced {
            continue;
        }
        last = now;
        let owned = tls.clone();
        let pair = tokio::task::spawn_blocking(move || read_pair(&owned)).await;
        let reloaded = match pair {
            Ok(Ok((cert, key))) => config
                .reload_from_pem(cert, key)
                .await
                .map_err(|e| pair_error(&tls, &e)),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(TlsError::Cert {
                path: tls.cert_file.clone(),
                reason: e.to_string(),
            }),
        };
        match reloaded {
            Ok(()) => tracing::info!(cert = %tls.cert_file.display(), "TLS certificate reloaded"),
            Err(e) => tracing::error!("{e}; keeping the certificate in use"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pair(dir: &Path) -> TlsConfig {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsConfig {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
        };
        std::fs::write(&tls.cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&tls.key_file, cert.signing_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&tls.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        tls
    }

    #[tokio::test]
    async fn a_good_pair_loads_and_bad_ones_are_named_without_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let tls = pair(dir.path());
        load(&tls).await.unwrap();

        // A world-readable key is refused like any secret file.
        std::fs::set_permissions(&tls.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&tls).await.unwrap_err();
        assert!(matches!(e, TlsError::Key(_)), "{e}");
        std::fs::set_permissions(&tls.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

        // A certificate file holding the key instead: a pair error naming both files.
        let key_pem = std::fs::read_to_string(&tls.key_file).unwrap();
        let swapped = TlsConfig {
            cert_file: tls.key_file.clone(),
            key_file: tls.key_file.clone(),
        };
        let e = load(&swapped).await.unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("cert-file"), "{e}");
        let body = key_pem.lines().nth(1).unwrap();
        assert!(!e.contains(body), "key material in the error: {e}");

        let missing = TlsConfig {
            cert_file: dir.path().join("nope.pem"),
            key_file: tls.key_file.clone(),
        };
        let e = load(&missing).await.unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
