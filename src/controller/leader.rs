//! Leader election on a `coordination.k8s.io` Lease: only the holder reconciles. A standby takes
//! over once the holder stops renewing for a lease duration; the holder itself stops after two
//! thirds of one without a renewal, so the two never overlap; a clean shutdown hands the Lease
//! back at once.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;

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
}

/// Whether `me` may take or keep the Lease at `now`: it is free, ours, or its holder stopped
/// renewing more than a lease duration ago.
pub fn may_hold(spec: &LeaseSpec, me: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == me {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1));
    now >= renewed + jiff::SignedDuration::from_secs(secs)
}

impl Elector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
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
            match self.try_hold().await {
                Ok(true) => return started,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: could not read or write the Lease")
                }
            }
            tokio::time::sleep(self.period()).await;
        }
    }

    /// Renews every third of a lease duration; returns when leadership is lost: someone else
    /// holds the Lease, or no renewal succeeded within the renew deadline. The deadline is two
    /// thirds of the duration, counted from before the last successful write, so this process
    /// stops working before any standby may take over (at renewTime + duration).
    pub async fn keep(&self, renewed: Instant) {
        let mut renewed = renewed;
        loop {
            tokio::time::sleep(self.period()).await;
            let started = Instant::now();
            let deadline = renewed + self.renew_deadline();
            match tokio::time::timeout_at(deadline, self.try_hold()).await {
                Ok(Ok(true)) => renewed = started,
                Ok(Ok(false)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election: renewal failed");
                    if Instant::now() >= deadline {
                        return;
                    }
                }
                Err(_) => {
                    tracing::warn!("leader election: no renewal within the renew deadline");
                    return;
                }
            }
        }
    }

    /// Hands the Lease back so a standby takes over without waiting for it to lapse.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("leader election: Lease released"),
            Err(e) => tracing::warn!(error = %e, "leader election: could not release the Lease"),
        }
    }

    fn period(&self) -> Duration {
        (self.settings.duration / 3).max(Duration::from_millis(200))
    }

    fn renew_deadline(&self) -> Duration {
        self.settings.duration * 2 / 3
    }

    /// One attempt to take or renew. `Ok(false)`: someone else holds it (or won a race).
    async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = self.identity().to_owned();
        let seconds = i32::try_from(self.settings.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let existing = self.api.get_opt(&self.settings.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if !may_hold(spec, &me, now) {
            return Ok(false);
        }
        if spec.holder_identity.as_deref() != Some(me.as_str()) {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(me);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds);
        // `replace` carries the resourceVersion read above: of two contenders only one wins.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn a_free_or_own_lease_may_be_held() {
        let now = Timestamp::now();
        assert!(may_hold(&LeaseSpec::default(), "a", now));
        assert!(may_hold(&held_by("a", now), "a", now));
        assert!(may_hold(&held_by("", now), "a", now));
    }

    #[test]
    fn another_holders_lease_is_taken_only_once_it_lapsed() {
        let renewed: Timestamp = "2026-11-26T08:00:00Z".parse().unwrap();
        let lease = held_by("b", renewed);
        let at = |s| renewed + jiff::SignedDuration::from_secs(s);
        assert!(!may_hold(&lease, "a", at(0)));
        assert!(!may_hold(&lease, "a", at(14)));
        assert!(may_hold(&lease, "a", at(15)));
    }
}
