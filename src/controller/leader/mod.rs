//! Leader election on a `coordination.k8s.io` Lease: only the holder reconciles. A standby takes
//! over once the holder's record has not changed for a lease duration; the holder itself stops
//! after two thirds of one without a renewal, so the two never overlap; a clean shutdown hands the
//! Lease back at once.
//!
//! As in client-go, a Lease is judged by when this process last saw its record change, on this
//! process's own clock; the holder's `renewTime` is never compared with local time. Clocks differ
//! between machines, and a `renewTime` near the largest timestamp must neither overflow nor keep
//! the Lease forever.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::time::Instant;

mod lease;
mod rule;

pub use rule::{MAX_LEASE_DURATION, Observed, lease_duration, may_hold, unchanged_for};

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Who we are in `holderIdentity`: the pod name, or host and a random suffix.
    pub identity: String,
    pub duration: Duration,
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The Lease record as last read, and since when (our clock) it has been the same.
    observed: Mutex<Option<Observed>>,
}

impl Elector {
    /// A duration beyond [`MAX_LEASE_DURATION`] is cut to it.
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        let settings = LeaseSettings {
            duration: settings.duration.min(MAX_LEASE_DURATION),
            ..settings
        };
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: Mutex::new(None),
        }
    }

    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Waits until this process holds the Lease, trying every third of a lease duration. Returns
    /// when the winning attempt started: the Lease's renewTime is no earlier than that.
    pub async fn acquire(&self) -> Instant {
        loop {
            let started = Instant::now();
            // Bounded: an API server that stops answering must not stall the election.
            match tokio::time::timeout(self.period(), self.try_hold()).await {
                Ok(Ok(true)) => return started,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election: could not read or write the Lease")
                }
                Err(_) => tracing::warn!("leader election: the Lease call timed out"),
            }
            tokio::time::sleep(self.period()).await;
        }
    }

    /// Renews every third of a lease duration, and soon again after a failed renewal; returns
    /// when leadership is lost: someone else holds the Lease, or no renewal succeeded within the
    /// renew deadline. The deadline is two thirds of the duration, counted from before the last
    /// successful write, so this process stops before any standby may take over (a duration after
    /// it saw that write); a single failed renewal costs nothing.
    pub async fn keep(&self, renewed: Instant) {
        let mut renewed = renewed;
        let mut wait = self.period();
        loop {
            tokio::time::sleep(wait).await;
            let started = Instant::now();
            // A deadline past the end of the clock counts as passed: stepping down is the safe side.
            let deadline = renewed
                .checked_add(self.renew_deadline())
                .unwrap_or(renewed);
            if started >= deadline {
                tracing::warn!("leader election: no renewal within the renew deadline");
                return;
            }
            match tokio::time::timeout_at(deadline, self.try_hold()).await {
                Ok(Ok(true)) => {
                    renewed = started;
                    wait = self.period();
                }
                Ok(Ok(false)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election: renewal failed; retrying");
                    wait = self.retry_period();
                }
                Err(_) => {
                    tracing::warn!("leader election: no renewal within the renew deadline");
                    return;
                }
            }
        }
    }

    /// Hands the Lease back so a standby takes over without waiting for it to lapse. Bounded by
    /// a third of the lease duration: on the way out, an unresponsive API server must not keep
    /// the process alive (the Lease then lapses on its own).
    pub async fn release(&self) {
        if tokio::time::timeout(self.period(), self.give_back())
            .await
            .is_err()
        {
            tracing::warn!("leader election: could not release the Lease in time; it will lapse");
        }
    }

    fn period(&self) -> Duration {
        (self.settings.duration / 3).max(Duration::from_millis(200))
    }

    fn renew_deadline(&self) -> Duration {
        self.settings.duration.saturating_mul(2) / 3
    }

    /// After a failed renewal: several more tries fit before the renew deadline.
    fn retry_period(&self) -> Duration {
        (self.settings.duration / 12).max(Duration::from_millis(50))
    }
}

#[cfg(test)]
mod tests;
