//! The Elector against kube-rs's `tower-test` mock API server, in paused time: renewals, the
//! renew deadline, release, and take-overs judged on this process's clock.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;
use tokio::time::Instant;

use super::{Elector, LeaseSettings, MAX_LEASE_DURATION};

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
