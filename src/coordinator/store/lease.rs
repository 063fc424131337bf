//! Leases: "this work runs in one place at a time" (assessment sweeps, alert evaluation, drill
//! orchestration), among every coordinator that shares the database.
//!
//! On PostgreSQL a lease is a session-level advisory lock (`pg_try_advisory_lock`) taken on a
//! connection of its own, outside the pool. The server releases it when that session ends: when
//! the guard is dropped or released, and also when the holder dies or loses its connection, so a
//! surviving replica takes over without any expiry to tune. A holder that may have lost its
//! connection learns it from [`LeaseGuard::is_held`] and must then stop the work.
//!
//! On SQLite one process owns the database file, so a lease is a name in an in-process set.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use super::{Backend, Store, StoreError};

/// How long [`LeaseGuard::is_held`] waits for the server before taking the lease as lost.
const HELD_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Proof of holding a lease; the lease is released when the guard is dropped (or
/// [`LeaseGuard::release`]d).
pub struct LeaseGuard {
    name: String,
    held: Held,
}

enum Held {
    Local(Arc<Mutex<HashSet<String>>>),
    /// `None` once the connection was found dead: the lease is gone for good.
    Postgres(Option<PgConnection>),
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("name", &self.name)
            .finish()
    }
}

/// The advisory lock key of a lease name: the first 8 bytes of sha256("lifeboat-lease:" + name).
fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("lifeboat-lease:{name}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

impl Store {
    /// Takes the lease `name` if no one holds it: `Ok(None)` when another holder has it. On
    /// PostgreSQL this opens a connection of its own, held until the guard goes.
    pub async fn try_acquire_lease(&self, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        match &self.backend {
            Backend::Sqlite { leases, .. } => {
                // The set is changed only by single insert/remove calls, so it stays consistent
                // even if a holder panicked: poisoning carries no meaning here.
                let inserted = leases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_string());
                Ok(inserted.then(|| LeaseGuard {
                    name: name.to_string(),
                    held: Held::Local(Arc::clone(leases)),
                }))
            }
            Backend::Postgres {
                connect,
                acquire_timeout,
                ..
            } => {
                let mut conn =
                    tokio::time::timeout(*acquire_timeout, PgConnection::connect_with(connect))
                        .await
                        .map_err(|_| {
                            StoreError::Unavailable("no connection for a lease in time".into())
                        })??;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(advisory_key(name))
                    .fetch_one(&mut conn)
                    .await?;
                if !got {
                    // Best effort: the server cleans up a dropped connection just as well.
                    let _ = conn.close().await;
                    return Ok(None);
                }
                Ok(Some(LeaseGuard {
                    name: name.to_string(),
                    held: Held::Postgres(Some(conn)),
                }))
            }
        }
    }
}

impl LeaseGuard {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lease is still held. On PostgreSQL this asks the server on the lease's own
    /// connection: `false` when that connection is gone (the server has released the lock and
    /// another replica may hold it now), and from then on. Call it before each unit of work.
    pub async fn is_held(&mut self) -> bool {
        match &mut self.held {
            Held::Local(_) => true,
            Held::Postgres(slot) => {
                let Some(conn) = slot.as_mut() else {
                    return false;
                };
                let alive = matches!(
                    tokio::time::timeout(HELD_CHECK_TIMEOUT, conn.execute("SELECT 1")).await,
                    Ok(Ok(_))
                );
                if !alive {
                    *slot = None;
                }
                alive
            }
        }
    }

    /// Releases the lease now (dropping the guard does too; this also waits for the server).
    pub async fn release(mut self) {
        if let Held::Postgres(slot) = &mut self.held
            && let Some(mut conn) = slot.take()
        {
            // Ending the session releases the lock either way; unlocking first makes it
            // immediate even if closing is slow.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(advisory_key(&self.name))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        match &mut self.held {
            Held::Local(leases) => {
                leases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&self.name);
            }
            // Dropping the connection closes its socket; the server then ends the session and
            // releases the advisory lock.
            Held::Postgres(slot) => drop(slot.take()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        assert_eq!(advisory_key("sweep"), advisory_key("sweep"));
        assert_ne!(advisory_key("sweep"), advisory_key("alerts"));
    }
}
