//! The ECS client against ecs-sim over real HTTP: signing, decoding, classification and retries.

mod support;

use std::time::{Duration, Instant};

use ecs_vnc_operator::aliyun::{
    ClientOptions, Credentials, EcsClient, EcsError, Endpoint, IssuedVncUrl, RetryPolicy,
    os_type_is_windows,
};
use ecs_vnc_operator::sim::{self, Fault, FaultKind, SimConfig, SimHandle};
use support::ecs_sim::{
    self, LINUX, REGION, SIM_KEY_ID, SIM_KEY_SECRET, STARTING, STOPPED, VNC, WINDOWS,
};
use support::ports::{assert_connection_refused, closed_endpoint};

async fn start(config: SimConfig) -> (SimHandle, Endpoint) {
    let sim = ecs_sim::start(config).await;
    let endpoint = ecs_sim::endpoint(&sim);
    (sim, endpoint)
}

async fn demo() -> (SimHandle, Endpoint) {
    start(SimConfig::demo()).await
}

fn creds() -> Credentials {
    Credentials::new(SIM_KEY_ID, SIM_KEY_SECRET, None)
}

/// A console URL for the demo Linux instance, with the demo AccessKey.
async fn open_linux(c: &EcsClient, endpoint: &Endpoint) -> Result<IssuedVncUrl, EcsError> {
    open_linux_as(c, endpoint, &creds()).await
}

async fn open_linux_as(
    c: &EcsClient,
    endpoint: &Endpoint,
    creds: &Credentials,
) -> Result<IssuedVncUrl, EcsError> {
    c.describe_instance_vnc_url(endpoint, creds, REGION, LINUX)
        .await
}

/// The next `times` answers to `DescribeInstanceVncUrl` are `kind`.
fn fail_next(sim: &SimHandle, kind: FaultKind, times: u32) {
    sim.inject(Fault::next(kind).for_action(VNC).times(times));
}

/// The error `client` reports when every answer is `kind`.
async fn error_when_every_answer_is(
    sim: &SimHandle,
    kind: FaultKind,
    client: &EcsClient,
    endpoint: &Endpoint,
) -> EcsError {
    fail_next(sim, kind, 10);
    open_linux(client, endpoint).await.unwrap_err()
}

/// Small delays so that retry tests take milliseconds.
fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        deadline: Duration::from_secs(5),
    }
}

fn client_with(retry: RetryPolicy, request_timeout: Duration) -> EcsClient {
    EcsClient::new(ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout,
        retry,
        ..ClientOptions::default()
    })
    .unwrap()
}

fn client() -> EcsClient {
    client_with(policy(4), Duration::from_secs(2))
}

/// Nothing a user might see carries a query string, the secret or the signature.
fn assert_clean(err: &EcsError) {
    for shown in [err.to_string(), format!("{err:?}"), err.message()] {
        assert!(!shown.contains(SIM_KEY_SECRET), "{shown}");
        assert!(!shown.contains("Signature="), "{shown}");
        assert!(!shown.contains("AccessKeyId="), "{shown}");
        assert!(!shown.contains(SIM_KEY_ID), "{shown}");
    }
}

#[tokio::test]
async fn issues_a_vnc_url_for_a_running_linux_instance() {
    let (sim, endpoint) = demo().await;
    let c = client();
    let os = c
        .describe_os_type(&endpoint, &creds(), REGION, LINUX)
        .await
        .unwrap();
    assert_eq!(os, "linux");
    assert!(!os_type_is_windows(&os));

    let before = jiff::Timestamp::now();
    let issued = open_linux(&c, &endpoint).await.unwrap();
    let after = jiff::Timestamp::now();
    assert!(issued.vnc_url.starts_with("wss%3A%2F%2F"), "returned as is");
    assert!(!issued.request_id.is_empty());
    assert!(before <= issued.sent_at && issued.sent_at <= after);
    assert!(!format!("{issued:?}").contains("wss"));
    assert_eq!(sim.stats().count(VNC, "Success"), 1);
    assert_eq!(sim.stats().count("DescribeInstances", "Success"), 1);
}

#[tokio::test]
async fn detects_windows() {
    let (_sim, endpoint) = demo().await;
    let os = client()
        .describe_os_type(&endpoint, &creds(), REGION, WINDOWS)
        .await
        .unwrap();
    assert!(os_type_is_windows(&os));
}

#[tokio::test]
async fn unknown_instance_in_describe_instances_is_not_found_and_terminal() {
    let (sim, endpoint) = demo().await;
    let err = client()
        .describe_os_type(&endpoint, &creds(), REGION, "i-doesnotexist")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidInstanceId.NotFound");
    assert!(!err.is_retryable());
    assert!(err.request_id().is_some());
    assert_eq!(sim.stats().total("DescribeInstances"), 1);
}

#[tokio::test]
async fn sts_credentials_send_their_token() {
    let mut config = SimConfig::demo();
    config.accounts.push(sim::SimAccount {
        access_key_id: "STS.sim-id".into(),
        access_key_secret: "sts-secret".into(),
        security_token: Some("sts-token-value".into()),
    });
    let (sim, endpoint) = start(config).await;
    let sts = Credentials::new("STS.sim-id", "sts-secret", Some("sts-token-value".into()));
    open_linux_as(&client(), &endpoint, &sts).await.unwrap();

    let wrong = Credentials::new("STS.sim-id", "sts-secret", Some("other-token".into()));
    let err = open_linux_as(&client(), &endpoint, &wrong)
        .await
        .unwrap_err();
    assert!(err.code().starts_with("InvalidSecurityToken"), "{err}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("other-token"));
    assert_eq!(sim.stats().count(VNC, "Success"), 1);
    assert_eq!(sim.stats().total(VNC), 2, "terminal: no retry");
}

#[tokio::test]
async fn natural_error_answers_are_decoded_and_classified() {
    let (sim, endpoint) = demo().await;
    let c = client_with(policy(2), Duration::from_secs(2));
    // (region, instance, code, retryable)
    let cases = [
        (
            REGION,
            "i-doesnotexist",
            "InvalidInstanceId.NotFound",
            false,
        ),
        ("eu-nowhere-1", LINUX, "InvalidRegionId.NotFound", false),
        ("cn-shanghai", LINUX, "InvalidRegionInstance", false),
        (REGION, STOPPED, "IncorrectInstanceStatus", true),
        (REGION, STARTING, "InstanceNotReady", true),
    ];
    for (region, instance, code, retryable) in cases {
        sim.reset();
        let err = c
            .describe_instance_vnc_url(&endpoint, &creds(), region, instance)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.is_retryable(), retryable, "{code}");
        assert!(err.request_id().is_some_and(|r| !r.is_empty()), "{code}");
        assert!(err.http_status().is_some());
        assert!(!err.message().is_empty());
        assert!(!err.message().contains(err.request_id().unwrap()));
        assert_clean(&err);
        let expected_calls = if retryable { 2 } else { 1 };
        assert_eq!(sim.stats().total(VNC), expected_calls, "{code}");
    }
}

/// ECS's error answers (status, code, message) and whether the client retries them.
const SEED: [(u16, &str, &str, bool); 14] = [
    (
        400,
        "InvalidRegionInstance",
        "The specified InstanceId does not exist in given region.",
        false,
    ),
    (
        403,
        "IncorrectInstanceStatus",
        "The current status of the resource does not support this operation.",
        true,
    ),
    (
        403,
        "InstanceNotReady",
        "The specified instance is not ready for use",
        true,
    ),
    (
        403,
        "InstanceNotReady",
        "Temporarily unable to connect the specified instance,please try later.",
        true,
    ),
    (
        404,
        "InvalidRegionId.NotFound",
        "The specified RegionId does not exist.",
        false,
    ),
    (
        404,
        "InvalidInstanceId.NotFound",
        "The specified InstanceId does not exist.",
        false,
    ),
    (
        500,
        "InternalError",
        "The request processing has failed due to some unknown error.",
        true,
    ),
    (
        403,
        "Forbidden.RAM",
        "User not authorized to operate on the specified resource.",
        false,
    ),
    (
        400,
        "MissingParameter",
        "The input parameter is not supplied.",
        false,
    ),
    (
        404,
        "InvalidAccessKeyId.NotFound",
        "Specified access key is not found.",
        false,
    ),
    (
        400,
        "Throttling.User",
        "Request was denied due to user flow control.",
        true,
    ),
    (
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
        true,
    ),
    (400, "SomethingNew", "Unknown 4xx is terminal.", false),
    (502, "SomethingNew", "Unknown 5xx is retried.", true),
];

#[tokio::test]
async fn every_seed_error_code_is_mapped() {
    let (sim, endpoint) = demo().await;
    let c = client_with(policy(3), Duration::from_secs(2));
    for (status, code, message, retryable) in SEED {
        sim.reset();
        let kind = FaultKind::Error {
            status,
            code: code.into(),
            message: message.into(),
        };
        fail_next(&sim, kind, 10);
        let err = open_linux(&c, &endpoint).await.unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.message(), message);
        assert_eq!(err.http_status(), Some(status));
        assert_eq!(err.is_retryable(), retryable, "{code}");
        assert!(err.request_id().is_some());
        assert_eq!(err.to_string(), format!("ECS answered {code}: {message}"));
        let expected_calls = if retryable { 3 } else { 1 };
        assert_eq!(sim.stats().total(VNC), expected_calls, "{code}");
    }
}

#[tokio::test]
async fn wrong_secret_is_terminal_and_never_echoed() {
    let (sim, endpoint) = demo().await;
    let bad = Credentials::new(SIM_KEY_ID, "not-the-secret", None);
    let err = open_linux_as(&client(), &endpoint, &bad).await.unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert!(!err.is_retryable());
    assert_clean(&err);
    assert!(!err.message().contains("not-the-secret"));
    assert_eq!(sim.stats().total(VNC), 1);

    let unknown = Credentials::new("nobody-key-id", SIM_KEY_SECRET, None);
    let err = open_linux_as(&client(), &endpoint, &unknown)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId.NotFound");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn retries_an_internal_error_then_succeeds() {
    let (sim, endpoint) = demo().await;
    fail_next(&sim, FaultKind::InternalError, 1);
    let issued = open_linux(&client(), &endpoint).await.unwrap();
    assert!(!issued.vnc_url.is_empty());
    let stats = sim.stats();
    assert_eq!(stats.total(VNC), 2);
    assert_eq!(stats.count(VNC, "InternalError"), 1);
    assert_eq!(stats.count(VNC, "Success"), 1);
}

#[tokio::test]
async fn each_attempt_has_a_fresh_nonce() {
    let (sim, endpoint) = demo().await;
    fail_next(&sim, FaultKind::ServiceUnavailable, 2);
    open_linux(&client(), &endpoint).await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.count(VNC, "ServiceUnavailable"), 2);
    assert_eq!(stats.count(VNC, "Success"), 1);
    assert_eq!(stats.count(VNC, "SignatureNonceUsed"), 0);

    // Many calls in a row: every nonce is new to the sim.
    let c = client();
    for _ in 0..10 {
        c.describe_os_type(&endpoint, &creds(), REGION, LINUX)
            .await
            .unwrap();
    }
    assert_eq!(
        sim.stats().count("DescribeInstances", "SignatureNonceUsed"),
        0
    );
}

#[tokio::test]
async fn the_31st_url_in_a_minute_is_throttled_and_retryable() {
    let (sim, endpoint) = demo().await;
    let c = client_with(policy(2), Duration::from_secs(2));
    for _ in 0..30 {
        open_linux(&c, &endpoint).await.unwrap();
    }
    let err = open_linux(&c, &endpoint).await.unwrap_err();
    assert!(err.code().starts_with("Throttling"), "{err}");
    assert!(err.is_retryable());
    assert!(err.is_throttling());
    assert_eq!(sim.stats().count(VNC, "Success"), 30);
    assert_eq!(sim.stats().total(VNC), 32, "30 + one call of two attempts");
    // Other instances have their own budget.
    c.describe_instance_vnc_url(&endpoint, &creds(), REGION, WINDOWS)
        .await
        .unwrap();
}

#[tokio::test]
async fn garbage_bodies_are_retried_then_reported() {
    let (sim, endpoint) = demo().await;
    fail_next(&sim, FaultKind::Malformed, 1);
    open_linux(&client(), &endpoint).await.unwrap();
    assert_eq!(sim.stats().total(VNC), 2);

    sim.reset();
    let client = client_with(policy(3), Duration::from_secs(2));
    let err = error_when_every_answer_is(&sim, FaultKind::Malformed, &client, &endpoint).await;
    assert_eq!(err.code(), "MalformedResponse");
    assert!(err.is_retryable());
    assert_eq!(sim.stats().total(VNC), 3, "bounded by max_attempts");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (sim, endpoint) = demo().await;
    let client = client_with(policy(2), Duration::from_secs(5));
    let err = error_when_every_answer_is(&sim, FaultKind::Oversized, &client, &endpoint).await;
    assert_eq!(err.code(), "ResponseTooLarge");
    assert!(err.is_retryable());
    assert_clean(&err);
    assert_eq!(sim.stats().total(VNC), 2);
}

#[tokio::test]
async fn slow_answers_time_out_within_bounds() {
    let (sim, endpoint) = demo().await;
    let slow = FaultKind::Delay(Duration::from_secs(5));
    let started = Instant::now();
    let client = client_with(policy(2), Duration::from_millis(200));
    let err = error_when_every_answer_is(&sim, slow, &client, &endpoint).await;
    let took = started.elapsed();
    assert_eq!(err.code(), "Timeout");
    assert!(err.is_retryable());
    assert_clean(&err);
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        took >= Duration::from_millis(400),
        "two attempts of 200 ms: {took:?}"
    );
}

#[tokio::test]
async fn the_overall_deadline_caps_a_call() {
    let (sim, endpoint) = demo().await;
    fail_next(&sim, FaultKind::Delay(Duration::from_secs(5)), 10);
    let retry = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        deadline: Duration::from_millis(500),
    };
    let started = Instant::now();
    let err = open_linux(&client_with(retry, Duration::from_secs(10)), &endpoint)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Timeout");
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported() {
    let (sim, endpoint) = demo().await;
    fail_next(&sim, FaultKind::Drop, 1);
    open_linux(&client(), &endpoint).await.unwrap();
    assert_eq!(sim.stats().count(VNC, "Success"), 1);

    sim.reset();
    let client = client_with(policy(3), Duration::from_secs(2));
    let err = error_when_every_answer_is(&sim, FaultKind::Drop, &client, &endpoint).await;
    assert_eq!(err.code(), "ConnectionFailed");
    assert!(err.is_retryable());
    assert_clean(&err);
    assert!(err.to_string().contains(&endpoint.to_string()));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_connection_failure_without_query() {
    let closed = closed_endpoint();
    let endpoint = Endpoint::parse(&closed).unwrap();
    let err = open_linux(&client_with(policy(2), Duration::from_secs(1)), &endpoint)
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert_connection_refused(err.code(), err.is_retryable(), &shown, &closed);
    assert_clean(&err);
}

#[tokio::test]
async fn clones_share_the_client_and_work_concurrently() {
    let (sim, endpoint) = demo().await;
    let c = client();
    let tasks: Vec<_> = [LINUX, WINDOWS, LINUX, WINDOWS]
        .into_iter()
        .map(|id| {
            let c = c.clone();
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                c.describe_instance_vnc_url(&endpoint, &creds(), REGION, id)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.stats().count(VNC, "Success"), 4);
}
