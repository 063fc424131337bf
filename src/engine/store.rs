//! Builds the `object_store` client for a policy repository: local path, S3, GCS or Azure.
//!
//! Credentials are resolved here from their sources and handed straight to the client builder;
//! they are also collected into a [`Scrubber`] so no error message can echo them. Timeouts are
//! sized from the policy (`request-timeout`, default 10 min) because a 64 MiB pack on a branch
//! link takes minutes, and object_store's 30 s default would fail it.

use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::backend::Scrubber;
use super::error::EngineError;
use crate::policy::{RepoUrl, Repository};
use crate::secret::{Secret, SecretSource};

/// A built client plus what the backend needs around it.
pub struct BuiltStore {
    pub store: Arc<dyn ObjectStore>,
    /// Key prefix of the repository inside the store.
    pub prefix: String,
    /// Where the repository is, for messages (never contains credentials).
    pub location: String,
    /// Resolved credentials, to be scrubbed from every message.
    pub secrets: Vec<String>,
}

fn resolve(repo: &Repository, what: &str, source: &SecretSource) -> Result<Secret, EngineError> {
    source.resolve().map_err(|source| EngineError::Secret {
        repository: repo.id.to_string(),
        what: what.to_string(),
        source,
    })
}

/// Creates the client. `create_local` makes a missing local directory (for `init`).
pub fn build(repo: &Repository, create_local: bool) -> Result<BuiltStore, EngineError> {
    let invalid = |message: String| EngineError::Config {
        repository: repo.id.to_string(),
        message,
    };
    let mut secrets = Vec::new();
    let retry = RetryConfig {
        max_retries: repo.max_retries as usize,
        // object_store re-sends without re-signing; keep the budget under the 15 min SigV4 window.
        retry_timeout: Duration::from_secs(10 * 60),
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_timeout(repo.request_timeout.as_std())
        .with_connect_timeout(Duration::from_secs(20));
    let (store, prefix): (Arc<dyn ObjectStore>, String) = match &repo.url {
        RepoUrl::Local(path) => {
            if !path.exists() {
                if create_local {
                    std::fs::create_dir_all(path).map_err(|e| {
                        invalid(format!("cannot create {}: {}", path.display(), e.kind()))
                    })?;
                } else {
                    return Err(EngineError::NotInitialised {
                        repository: repo.id.to_string(),
                        location: path.display().to_string(),
                    });
                }
            }
            let fs = LocalFileSystem::new_with_prefix(path)
                .map_err(|e| invalid(format!("cannot open {}: {e}", path.display())))?;
            (Arc::new(fs), String::new())
        }
        RepoUrl::S3 { bucket, prefix } => {
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_client_options(client.with_allow_http(repo.allow_http))
                .with_retry(retry)
                .with_virtual_hosted_style_request(false)
                .with_region(
                    repo.region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".to_string()),
                );
            if let Some(endpoint) = &repo.endpoint {
                b = b.with_endpoint(endpoint.to_string().trim_end_matches('/'));
            }
            if let Some(src) = &repo.access_key_id {
                let v = resolve(repo, "access-key-id", src)?;
                b = b.with_access_key_id(v.expose());
                secrets.push(v.expose().to_string());
            }
            if let Some(src) = &repo.secret_access_key {
                let v = resolve(repo, "secret-access-key", src)?;
                b = b.with_secret_access_key(v.expose());
                secrets.push(v.expose().to_string());
            }
            if let Some(src) = &repo.session_token {
                let v = resolve(repo, "session-token", src)?;
                b = b.with_token(v.expose());
                secrets.push(v.expose().to_string());
            }
            let store = b
                .build()
                .map_err(|e| invalid(Scrubber::new(secrets.clone()).scrub(&e.to_string())))?;
            (Arc::new(store), prefix.clone())
        }
        RepoUrl::Gcs { bucket, prefix } => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_client_options(client)
                .with_retry(retry);
            if let Some(path) = &repo.service_account_key {
                b = b.with_service_account_path(path.display().to_string());
            }
            let store = b.build().map_err(|e| invalid(e.to_string()))?;
            (Arc::new(store), prefix.clone())
        }
        RepoUrl::Azure { container, prefix } => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_container_name(container)
                .with_client_options(client)
                .with_retry(retry);
            if let Some(account) = &repo.account {
                b = b.with_account(account);
            }
            if let Some(src) = &repo.access_key {
                let v = resolve(repo, "access-key", src)?;
                b = b.with_access_key(v.expose());
                secrets.push(v.expose().to_string());
            }
            let store = b
                .build()
                .map_err(|e| invalid(Scrubber::new(secrets.clone()).scrub(&e.to_string())))?;
            (Arc::new(store), prefix.clone())
        }
    };
    Ok(BuiltStore {
        store,
        prefix,
        location: repo.url.to_string(),
        secrets,
    })
}
