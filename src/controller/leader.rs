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

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;

/// The longest Lease: what `leaseDurationSeconds`, an int32, can say. Longer settings are cut to
/// it, which keeps every deadline computed from the duration far from overflow.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(i32::MAX as u64);

/// `leaseDurationSeconds` when a Lease does not say.
const DEFAULT_LEASE_SECONDS: i32 = 15;

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

/// A Lease record and the instant this process first saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    record: LeaseSpec,
    since: Instant,
}

/// How long a holder's claim lasts after its last renewal: `leaseDurationSeconds` (15 when unset),
/// at least a second.
pub fn lease_duration(spec: &LeaseSpec) -> Duration {
    let secs = spec
        .lease_duration_seconds
        .unwrap_or(DEFAULT_LEASE_SECONDS)
        .max(1);
    Duration::from_secs(secs.unsigned_abs().into())
}

/// Notes the record read at `now`; returns how long it has been unchanged, as this process saw it.
pub fn unchanged_for(
    observed: &mut Option<Observed>,
    record: &LeaseSpec,
    now: Instant,
) -> Duration {
    match observed {
        Some(seen) if seen.record == *record => now.saturating_duration_since(seen.since),
        _ => {
            *observed = Some(Observed {
                record: record.clone(),
                since: now,
            });
            Duration::ZERO
        }
    }
}

/// Whether `me` may take or keep the Lease: it is free or ours, or its record has stayed the same
/// for a lease duration (`unchanged_for`, on this process's clock).
pub fn may_hold(spec: &LeaseSpec, me: &str, unchanged_for: Duration) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    holder.is_empty() || holder == me || unchanged_for >= lease_duration(spec)
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
        self.settings.duration.saturating_mul(2) / 3
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
    fn a_free_or_own_lease_may_be_held_at_once() {
        let now = Timestamp::now();
        assert!(may_hold(&LeaseSpec::default(), "a", Duration::ZERO));
        assert!(may_hold(&held_by("a", now), "a", Duration::ZERO));
        assert!(may_hold(&held_by("", now), "a", Duration::ZERO));
    }

    #[test]
    fn another_holders_lease_is_taken_once_unchanged_for_a_lease_duration() {
        // Whatever its timestamps say: only how long it looked the same to us counts.
        for renewed in [Timestamp::MIN, Timestamp::UNIX_EPOCH, Timestamp::MAX] {
            let lease = held_by("b", renewed);
            assert!(!may_hold(&lease, "a", Duration::ZERO));
            assert!(!may_hold(&lease, "a", Duration::from_millis(14_999)));
            assert!(may_hold(&lease, "a", Duration::from_secs(15)));
        }
    }

    #[test]
    fn odd_lease_durations_mean_at_least_a_second() {
        let with = |secs| LeaseSpec {
            lease_duration_seconds: secs,
            ..Default::default()
        };
        assert_eq!(lease_duration(&with(None)), Duration::from_secs(15));
        assert_eq!(lease_duration(&with(Some(0))), Duration::from_secs(1));
        assert_eq!(
            lease_duration(&with(Some(i32::MIN))),
            Duration::from_secs(1)
        );
        assert_eq!(
            lease_duration(&with(Some(i32::MAX))),
            Duration::from_secs(i32::MAX as u64)
        );
    }

    #[test]
    fn a_change_of_record_restarts_the_count() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let a = held_by("b", Timestamp::UNIX_EPOCH);
        let b = held_by("b", Timestamp::MAX);
        let mut seen = None;
        assert_eq!(unchanged_for(&mut seen, &a, at(0)), Duration::ZERO);
        assert_eq!(
            unchanged_for(&mut seen, &a, at(10)),
            Duration::from_secs(10)
        );
        assert_eq!(unchanged_for(&mut seen, &b, at(11)), Duration::ZERO);
        assert_eq!(unchanged_for(&mut seen, &b, at(12)), Duration::from_secs(1));
        // An earlier instant than the observation (another task's reading) is not negative.
        assert_eq!(unchanged_for(&mut seen, &b, at(5)), Duration::ZERO);
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

    fn held_by_other(renew_time: &str, transitions: i32) -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "op", "namespace": "ops", "resourceVersion": "9"},
               "spec": {"holderIdentity": "other", "leaseDurationSeconds": 3,
                        "renewTime": renew_time, "leaseTransitions": transitions}})
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_renewed_at_the_end_of_time_is_taken_over_once_it_stops_changing() {
        let (elector, mut api) = elector(Duration::from_secs(3));
        let start = Instant::now();
        let acquire = tokio::spawn(async move { elector.acquire().await });
        // The largest renewTime this client can read (Timestamp::MAX, at microseconds) and the
        // largest transition count; the holder is gone.
        let stuck = held_by_other("9999-12-30T22:00:00.999999Z", i32::MAX);
        for _ in 0..4 {
            answer(&mut api, "GET", 200, stuck.clone()).await;
        }
        let (put, send) = api.next_request().await.expect("the take-over");
        assert_eq!(put.method().as_str(), "PUT");
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "a lease duration after the record was first seen"
        );
        let body = put.into_body().collect_bytes().await.unwrap();
        let written: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(written["spec"]["holderIdentity"], "me");
        assert_eq!(written["spec"]["leaseTransitions"], i32::MAX, "saturates");
        reply(send, 200, &written);
        acquire.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_that_keeps_renewing_keeps_the_lease_whatever_its_clock_says() {
        // Its renewTime lags far behind ours (by the old rule, long lapsed), but it changes.
        let (elector, mut api) = elector(Duration::from_secs(3));
        let acquire = tokio::spawn(async move { elector.acquire().await });
        for second in 0..10 {
            let renewed = format!("2000-01-01T00:00:{second:02}.000000Z");
            answer(&mut api, "GET", 200, held_by_other(&renewed, 1)).await;
        }
        assert!(!acquire.is_finished(), "never taken from a live holder");
        acquire.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_absurd_lease_duration_is_cut_to_what_a_lease_can_say() {
        let (elector, mut api) = elector(Duration::MAX);
        let start = Instant::now();
        let keep = tokio::spawn(async move { elector.keep(start).await });
        answer(&mut api, "GET", 200, held_by_me()).await;
        // The timer counts whole milliseconds.
        let third = MAX_LEASE_DURATION / 3;
        assert!(
            start.elapsed() >= third && start.elapsed() <= third + Duration::from_millis(1),
            "renews every third: {:?}",
            start.elapsed()
        );
        let (put, send) = api.next_request().await.expect("the renewal");
        let body = put.into_body().collect_bytes().await.unwrap();
        let written: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(written["spec"]["leaseDurationSeconds"], i32::MAX);
        reply(send, 200, &written);
        assert!(!keep.is_finished());
        keep.abort();
    }
}
