//! Serving in terms of leadership: wait for the Lease (when there is an election), serve until
//! the Lease is lost or SIGTERM comes, and go back to standby after a lost term.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::shutdown::Signal;
use crate::controller::leader::Elector;
use crate::controller::{self, Context};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::server::Probe;

/// What every term of service shares.
pub struct Terms {
    /// `None` without leader election: one term, until SIGTERM.
    pub elector: Option<Elector>,
    pub stop: Signal,
    pub probe: Arc<Probe>,
    pub metrics: Arc<Metrics>,
    /// Longest wait for in-flight work after SIGTERM.
    pub grace: Duration,
}

/// How a term of service ended.
enum Term {
    /// SIGTERM (or the controller ended by itself): the process exits with this outcome.
    Stopped(Result<(), String>),
    /// Leadership lost: back to standby.
    Lost,
}

impl Terms {
    /// Standby, serve, and back to standby when leadership is lost: the process never exits for
    /// it, so an API server outage of any length costs a term, not the pod. Each term gets its
    /// own context from `new_context`.
    pub async fn serve(&self, new_context: impl Fn() -> Arc<Context>) -> Result<(), String> {
        if self.elector.is_some() {
            // A standby is ready: readiness must not wait for leadership.
            self.probe.set_ready(true);
        }
        loop {
            let ControlFlow::Continue(renewed) = self.standby().await else {
                return Ok(());
            };
            self.metrics.leader.set(1);
            tracing::info!("ecs-vnc-operator serving");
            let term = self.term(new_context(), renewed).await;
            self.metrics.leader.set(0);
            match term {
                // The controller of the lost term was dropped: its reconciles are abandoned at
                // their next await, before any standby may take over.
                Term::Lost => tracing::warn!("lost the leader Lease; back to standby"),
                Term::Stopped(outcome) => {
                    if let Some(elector) = &self.elector {
                        elector.release().await;
                    }
                    tracing::info!("ecs-vnc-operator stopped");
                    return outcome;
                }
            }
        }
    }

    /// Waits for the Lease when there is an election: breaks when SIGTERM comes first, else goes
    /// on with the instant the Lease was taken (`None` without an election).
    async fn standby(&self) -> ControlFlow<(), Option<Instant>> {
        let Some(elector) = &self.elector else {
            return ControlFlow::Continue(None);
        };
        tracing::info!(
            identity = elector.identity(),
            "waiting for the leader Lease"
        );
        let held_since = tokio::select! {
            at = elector.acquire() => at,
            () = self.stop.wait() => return ControlFlow::Break(()),
        };
        tracing::info!(identity = elector.identity(), "became the leader");
        ControlFlow::Continue(Some(held_since))
    }

    /// One term: the controller runs until it stops, the shutdown grace runs out after SIGTERM,
    /// or the Lease taken at `renewed` is lost.
    async fn term(&self, ctx: Arc<Context>, renewed: Option<Instant>) -> Term {
        let grace = self.grace;
        let controller = controller::run(ctx, self.probe.clone(), self.stop.wait_owned());
        tokio::select! {
            result = controller => Term::Stopped(result.map_err(|e| e.to_string())),
            () = async { self.stop.wait().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "in-flight work abandoned at the shutdown deadline");
                Term::Stopped(Ok(()))
            }
            () = async {
                match (&self.elector, renewed) {
                    (Some(e), Some(at)) => e.keep(at).await,
                    _ => std::future::pending().await,
                }
            } => Term::Lost,
        }
    }
}
