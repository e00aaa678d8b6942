//! The Elector's Lease calls: one attempt to take or renew it (a conditional write, so of two
//! contenders only one wins), and handing it back.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use tokio::time::Instant;

use super::Elector;
use super::rule::{may_hold, unchanged_for};

impl Elector {
    /// Hands the Lease back, if this process holds it.
    pub(super) async fn give_back(&self) {
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

    /// One attempt to take or renew. `Ok(false)`: someone else holds it (or won a race).
    pub(super) async fn try_hold(&self) -> Result<bool, kube::Error> {
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
        let unchanged = {
            let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
            unchanged_for(&mut observed, spec, Instant::now())
        };
        if !may_hold(spec, &me, unchanged) {
            return Ok(false);
        }
        if spec.holder_identity.as_deref() != Some(me.as_str()) {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
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
