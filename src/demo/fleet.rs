//! The fleet in one process: the coordinator and one agent per host, each the very code of
//! `lifeboat coordinator` and `lifeboat agent`, as tasks of this runtime.
//!
//! Lifecycle: the coordinator starts first and must answer `/healthz` before the agents start
//! (they enrol with it). Each of them stops on SIGINT or SIGTERM by itself, through the
//! process-wide stop request ([`crate::shutdown`], installed before anything starts, so a
//! component still starting when Ctrl-C comes stops too); [`Fleet::stop`] raises SIGINT in
//! this process so they all drain exactly as on Ctrl-C, then waits for every task. Nothing here prepares files (see [`super::setup`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::DemoError;
use super::rewrite::Layout;
use crate::agent::AgentError;
use crate::clock::Clock;
use crate::coordinator::server::CoordinatorError;
use crate::exit::Exit;

/// The running tasks.
pub struct Fleet {
    coordinator: JoinHandle<Result<Exit, CoordinatorError>>,
    agents: Vec<(String, JoinHandle<Result<Exit, AgentError>>)>,
}

/// How long the coordinator may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Fleet {
    /// Starts the coordinator (waits until it is healthy), then every host's agent.
    pub async fn start(
        layout: &Layout,
        listen: SocketAddr,
        hosts: impl IntoIterator<Item = String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Fleet, DemoError> {
        crate::shutdown::install().map_err(|source| DemoError::Io {
            context: "cannot install the SIGINT/SIGTERM handlers".into(),
            source,
        })?;
        let config = layout.coordinator_config();
        let coordinator = {
            let clock = clock.clone();
            tokio::spawn(async move { crate::coordinator::server::run(&config, clock).await })
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| DemoError::Http(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if crate::shutdown::is_requested() {
                // Ctrl-C while starting: the coordinator stops by itself; let it drain.
                let _ = coordinator.await;
                return Err(DemoError::Interrupted);
            }
            if coordinator.is_finished() {
                return match coordinator.await {
                    Ok(Ok(_)) if crate::shutdown::is_requested() => Err(DemoError::Interrupted),
                    Ok(Ok(_)) => Err(DemoError::Stopped("the coordinator".into())),
                    Ok(Err(e)) => Err(DemoError::Coordinator(e)),
                    Err(e) => Err(DemoError::Stopped(format!("the coordinator ({e})"))),
                };
            }
            let url = format!("http://{listen}/healthz");
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                coordinator.abort();
                return Err(DemoError::Stopped(format!(
                    "the coordinator did not answer {url} within {}s",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let agents = hosts
            .into_iter()
            .map(|host| {
                let config = layout.agent_config(&host);
                let clock = clock.clone();
                let task = tokio::spawn(async move { crate::agent::run(&config, clock).await });
                (host, task)
            })
            .collect();
        Ok(Fleet {
            coordinator,
            agents,
        })
    }

    /// A component that stopped on its own (an error at its start), if any.
    pub fn failed(&self) -> Option<String> {
        if crate::shutdown::is_requested() {
            return Some("Ctrl-C: the fleet".into());
        }
        if self.coordinator.is_finished() {
            return Some("the coordinator stopped".into());
        }
        self.agents
            .iter()
            .find(|(_, t)| t.is_finished())
            .map(|(host, _)| format!("the agent of {host} stopped (see the log above)"))
    }

    /// Raises SIGINT in this process, as Ctrl-C does, then waits for every component.
    pub async fn stop(self) -> Result<(), DemoError> {
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT)
            .map_err(|e| DemoError::Io {
                context: "cannot signal this process to stop".into(),
                source: e.into(),
            })?;
        self.wait().await
    }

    /// Waits until every component has stopped (after Ctrl-C or [`Fleet::stop`]).
    pub async fn wait(self) -> Result<(), DemoError> {
        let mut problems = Vec::new();
        for (host, task) in self.agents {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => problems.push(format!("agent {host}: {e}")),
                Err(e) => problems.push(format!("agent {host}: {e}")),
            }
        }
        match self.coordinator.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("coordinator: {e}")),
            Err(e) => problems.push(format!("coordinator: {e}")),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DemoError::Stopped(problems.join("; ")))
        }
    }
}
