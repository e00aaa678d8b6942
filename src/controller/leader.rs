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
    /// successful write, so this process stops before any standby may take over (at renewTime +
    /// duration); a single failed renewal costs nothing.
    pub async fn keep(&self, renewed: Instant) {
        let mut renewed = renewed;
        let mut wait = self.period();
        loop {
            tokio::time::sleep(wait).await;
            let started = Instant::now();
            let deadline = renewed + self.renew_deadline();
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

    async fn give_back(&self) {
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

    /// After a failed renewal: several more tries fit before the renew deadline.
    fn retry_period(&self) -> Duration {
        (self.settings.duration / 12).max(Duration::from_millis(50))
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

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/op";

    fn elector(duration: Duration) -> (Elector, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let settings = LeaseSettings {
            name: "op".into(),
            namespace: "ops".into(),
            identity: "me".into(),
            duration,
        };
        (
            Elector::new(kube::Client::new(service, "default"), settings),
            handle,
        )
    }

    fn reply(
        send: tower_test::mock::SendResponse<Response<Body>>,
        code: u16,
        body: &serde_json::Value,
    ) {
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap(),
        );
    }

    /// Answers the next request, which must be `method` on the Lease, with `code` and `body`.
    async fn answer(handle: &mut Handle, method: &str, code: u16, body: serde_json::Value) {
        let (request, send) = handle.next_request().await.expect("a Lease call");
        assert_eq!(request.method().as_str(), method);
        assert_eq!(request.uri().path(), LEASE);
        reply(send, code, &body);
    }

    fn held_by_me() -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "op", "namespace": "ops", "resourceVersion": "7"},
               "spec": {"holderIdentity": "me", "leaseDurationSeconds": 3,
                        "renewTime": "2026-11-27T08:00:00.000000Z"}})
    }

    fn server_error() -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "InternalError", "code": 500, "message": "etcd is unhappy"})
    }

    // Paused time: the clock moves only when every task waits, so the instants are exact.
    #[tokio::test(start_paused = true)]
    async fn one_failed_renewal_is_retried_and_leadership_kept() {
        let (elector, mut api) = elector(Duration::from_secs(3));
        let start = Instant::now();
        let keep = tokio::spawn(async move { elector.keep(start).await });
        answer(&mut api, "GET", 500, server_error()).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "renews every third"
        );
        answer(&mut api, "GET", 200, held_by_me()).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1250),
            "retried soon after the failure, well before the deadline"
        );
        answer(&mut api, "PUT", 200, held_by_me()).await;
        // The next regular renewal comes a period after the successful one, still as leader.
        answer(&mut api, "GET", 200, held_by_me()).await;
        assert_eq!(start.elapsed(), Duration::from_millis(2250));
        assert!(!keep.is_finished(), "one failure does not cost the Lease");
        keep.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_before_a_standby_may_take_over() {
        let (elector, mut api) = elector(Duration::from_secs(3));
        let start = Instant::now();
        let keep = tokio::spawn(async move { elector.keep(start).await });
        let mut failures = 0;
        // The stream of calls ends when `keep` returns and drops the client.
        while let Some((_, send)) = api.next_request().await {
            reply(send, 500, &server_error());
            failures += 1;
            assert!(failures < 20, "renewal attempts are bounded");
        }
        keep.await.unwrap();
        assert!(failures >= 3, "retried a few times first, got {failures}");
        // A standby may take over at renewTime + 3 s; this leader stopped at 2 s.
        assert!(
            start.elapsed() <= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn release_does_not_hang_on_a_silent_api_server() {
        let (elector, mut api) = elector(Duration::from_secs(3));
        let start = Instant::now();
        let release = tokio::spawn(async move { elector.release().await });
        // Take the GET and never answer it.
        let _pending = api.next_request().await.expect("a Lease call");
        release.await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "bounded by a third of the Lease"
        );
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
