//! The process-wide stop request: SIGINT or SIGTERM, received at any time since [`install`].
//!
//! Long-running components (the coordinator, the agent, the fleet of `lifeboat up` and
//! `lifeboat demo`) wait on [`requested`] instead of each creating its own signal stream. A
//! stream sees only the signals delivered after it was created, so a component still starting
//! when Ctrl-C came (an agent enrolling in `lifeboat up`) would never have stopped, and the
//! process with it. One-shot commands do not install it: Ctrl-C ends them at once.

use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

static STOP: OnceLock<watch::Sender<bool>> = OnceLock::new();

/// Starts listening for SIGINT and SIGTERM, once per process (later calls do nothing). Must
/// be called inside the tokio runtime; the signals are caught from the moment it returns.
pub fn install() -> std::io::Result<()> {
    if STOP.get().is_some() {
        return Ok(());
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    if STOP.set(watch::channel(false).0).is_err() {
        // Another caller installed it at the same moment; its listener runs.
        return Ok(());
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if let Some(stop) = STOP.get() {
            stop.send_replace(true);
        }
    });
    Ok(())
}

/// Whether a stop has been requested (false when [`install`] was never called).
pub fn is_requested() -> bool {
    STOP.get().is_some_and(|stop| *stop.borrow())
}

/// Resolves once a stop has been requested, at once if it already was. Installs the listener
/// if nothing did before (then only signals from now on count); if the signal handlers cannot
/// be installed at all, it never resolves.
pub async fn requested() {
    if let Err(e) = install() {
        tracing::error!("cannot install the SIGINT/SIGTERM handlers: {e}");
        return std::future::pending().await;
    }
    let Some(stop) = STOP.get() else {
        return std::future::pending().await;
    };
    let mut rx = stop.subscribe();
    let _ = rx.wait_for(|stop| *stop).await;
}
