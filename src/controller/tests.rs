//! Reconcile against kube-rs's `tower-test` mock API server and a real in-process `ecs-sim`:
//! each scenario states the exact Kubernetes calls, in order, with the bodies that matter.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::{Context, Settings, reconcile};
use crate::aliyun::{
    ClientOptions, Credentials, EcsClient, Endpoint, OperatorCredentials, RetryPolicy, StsClient,
    StsOptions,
};
use crate::session::expiry::Limits;
use crate::session::{VncSession, VncSessionStatus};
use crate::sim::{self, Fault, FaultKind, SimConfig, SimHandle};

const NS: &str = "team-a";
const LINUX: &str = "i-bp1hzoinajzkh91h1234";
const SESSIONS: &str = "/apis/ecsvnc.dev/v1alpha1/namespaces/team-a/vncsessions";

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

struct Fixture {
    ctx: Arc<Context>,
    api: Handle,
    sim: SimHandle,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(tune: impl FnOnce(&mut Settings)) -> Fixture {
    let sim = sim::start(SimConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (service, api) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let ecs = EcsClient::new(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            deadline: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    })
    .unwrap();
    let mut settings = Settings {
        limits: Limits::default(),
        console_base_url: crate::aliyun::DEFAULT_CONSOLE_BASE.to_owned(),
        reconnect_limit_per_minute: 30,
        ecs_endpoint: Some(sim.endpoint()),
        allowed_endpoints: crate::aliyun::AllowedEndpoints::default(),
        regions: crate::aliyun::Regions::default(),
        credentials: None,
        oidc_provider_arn: None,
        keyless_sessions: false,
        sts_endpoint: Endpoint::parse(&sim.endpoint()).unwrap(),
        operator_credentials_scope: super::OperatorCredentialsScope::Nowhere,
        watch_namespace: None,
        max_concurrent_reconciles: 32,
    };
    tune(&mut settings);
    let sts = StsClient::new(StsOptions::default()).unwrap();
    Fixture {
        ctx: Arc::new(Context::new(client, ecs, sts, settings, Arc::default())),
        api,
        sim,
    }
}

/// A session as the watch cache would hand it over, built up for each scenario.
fn session(name: &str) -> VncSession {
    let created = Timestamp::now() - SignedDuration::from_secs(10);
    serde_json::from_value(json!({
        "apiVersion": "ecsvnc.dev/v1alpha1",
        "kind": "VncSession",
        "metadata": {
            "name": name, "namespace": NS, "uid": format!("uid-{name}"), "generation": 1,
            "resourceVersion": "10", "creationTimestamp": Time(created),
        },
        "spec": {
            "regionId": "cn-hangzhou", "instanceId": LINUX,
            "credentialsRef": {"name": "ecs-credentials"}, "reason": "INC-42 disk full",
        }
    }))
    .unwrap()
}

fn with_status(mut s: VncSession, edit: impl FnOnce(&mut VncSessionStatus)) -> VncSession {
    let mut status = s.status.take().unwrap_or_default();
    status.observed_generation = Some(1);
    edit(&mut status);
    s.status = Some(status);
    s
}

/// A session that was issued a URL `ago` seconds back.
fn issued(name: &str, ago: i64) -> VncSession {
    let base = Timestamp::now() - SignedDuration::from_secs(ago);
    let e = crate::session::expiry::Expiry::from_issue(base, Limits::default());
    with_status(session(name), |st| {
        st.phase = Some(crate::session::crd::Phase::Ready);
        st.console_url = Some("https://console/?vncUrl=wss%3A%2F%2Fsecret-token".into());
        st.vnc_url = Some("wss%3A%2F%2Fsecret-token".into());
        st.issued_at = Some(Time(e.issued_at));
        st.url_expires_at = Some(Time(e.url_expires_at));
        st.session_expires_at = Some(Time(e.session_expires_at));
        st.is_windows = Some(false);
    })
}

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "ecs-credentials", "namespace": NS, "resourceVersion": "77"},
           "data": data})
}

fn good_secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    secret(
        json!({"accessKeyId": b64("sim-access-key-id"), "accessKeySecret": b64("sim-access-key-secret")}),
    )
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// One expected request: method, path (without query), and the answer to give.
struct Expect {
    method: &'static str,
    path: String,
    reply: (u16, Value),
}

fn get(path: String, reply: Value) -> Expect {
    Expect {
        method: "GET",
        path,
        reply: (200, reply),
    }
}

/// Serves `steps` in order and returns each request's query and JSON body; fails on anything else.
async fn serve(api: &mut Handle, steps: Vec<Expect>) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for step in steps {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), api.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came for {} {}", step.method, step.path))
            .expect("the client is gone");
        assert_eq!(
            request.method().as_str(),
            step.method,
            "method for {}",
            step.path
        );
        assert_eq!(request.uri().path(), step.path);
        let query = request.uri().query().unwrap_or_default().to_owned();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let (code, reply) = step.reply;
        let reply = if code == 200 && reply.is_null() {
            body.clone()
        } else {
            reply
        };
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        seen.push((query, body));
    }
    seen
}

/// The status write; answered with the object as the API server would return it.
fn status_patch(name: &str) -> Expect {
    let mut obj = session_json(&session(name));
    obj["status"] = json!({});
    Expect {
        method: "PATCH",
        path: format!("{SESSIONS}/{name}/status"),
        reply: (200, obj),
    }
}

/// The Pending status written before the first ECS call; answered with a new resourceVersion.
fn pending_patch(name: &str) -> Expect {
    let mut obj = session_json(&session(name));
    obj["metadata"]["resourceVersion"] = json!("11");
    obj["status"] = json!({"phase": "Pending"});
    Expect {
        method: "PATCH",
        path: format!("{SESSIONS}/{name}/status"),
        reply: (200, obj),
    }
}

/// The calls of a first issue: Pending, the Secret, the status, the Event (no read of the session).
fn first_issue_steps(name: &str, secret: Value) -> Vec<Expect> {
    vec![
        pending_patch(name),
        get(
            format!("/api/v1/namespaces/{NS}/secrets/ecs-credentials"),
            secret,
        ),
        status_patch(name),
        event(),
    ]
}

/// The AccessKey `ecs-sim`'s demo account accepts.
fn sim_credentials() -> Credentials {
    Credentials::new("sim-access-key-id", "sim-access-key-secret", None)
}

/// A status write refused with 409: someone else wrote the session first.
fn status_conflict(name: &str) -> Expect {
    Expect {
        method: "PATCH",
        path: format!("{SESSIONS}/{name}/status"),
        reply: conflict(),
    }
}

/// The read of the session's Secret, answered with good credentials.
fn secret_read() -> Expect {
    get(
        format!("/api/v1/namespaces/{NS}/secrets/ecs-credentials"),
        good_secret(),
    )
}

fn event() -> Expect {
    Expect {
        method: "POST",
        path: format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        reply: (200, Value::Null),
    }
}

fn session_json(s: &VncSession) -> Value {
    serde_json::to_value(s).unwrap()
}

async fn run(
    f: &mut Fixture,
    obj: &VncSession,
    steps: Vec<Expect>,
) -> (Action, Vec<(String, Value)>) {
    let ctx = f.ctx.clone();
    let obj = Arc::new(obj.clone());
    let (action, seen) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), reconcile(obj, ctx)),
        serve(&mut f.api, steps)
    );
    let action = action
        .expect("reconcile hung (an unexpected API call?)")
        .expect("reconcile failed");
    (action, seen)
}

fn requeue_secs(action: &Action) -> f64 {
    let text = format!("{action:?}");
    let inner = text
        .split("Some(")
        .nth(1)
        .unwrap_or_else(|| panic!("no requeue in {text}"));
    let number: String = inner
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let value: f64 = number.parse().unwrap();
    if inner[number.len()..].starts_with("ms") {
        value / 1000.0
    } else {
        value
    }
}

#[tokio::test]
async fn first_issue_reads_the_secret_calls_ecs_and_applies_a_ready_status() {
    let mut f = fixture().await;
    let s = session("db-1");
    let (action, seen) = run(&mut f, &s, first_issue_steps("db-1", good_secret())).await;

    let (query, patch) = &seen[2];
    assert!(
        query.contains("fieldManager=ecs-vnc-operator") && query.contains("force=true"),
        "{query}"
    );
    assert_eq!(
        seen[0].1["status"]["phase"], "Pending",
        "Pending while the first call runs"
    );
    assert_eq!(
        seen[0].1["metadata"]["resourceVersion"], "10",
        "the write is conditional on what was read"
    );
    assert_eq!(
        patch["metadata"]["resourceVersion"], "11",
        "and the next write on the Pending one"
    );
    let st = &patch["status"];
    assert_eq!(st["phase"], "Ready");
    assert_eq!(st["refreshable"], false);
    assert_eq!(st["isWindows"], false);
    assert_eq!(st["observedGeneration"], 1);
    let vnc_url = st["vncUrl"].as_str().unwrap();
    assert!(vnc_url.starts_with("wss%3A%2F%2F"), "{vnc_url}");
    assert_eq!(
        st["consoleUrl"],
        format!(
            "{}?vncUrl={vnc_url}&instanceId={LINUX}&isWindows=false",
            crate::aliyun::DEFAULT_CONSOLE_BASE
        )
    );
    let issued: Timestamp = st["issuedAt"].as_str().unwrap().parse().unwrap();
    let expires: Timestamp = st["urlExpiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires.duration_since(issued),
        SignedDuration::from_secs(15)
    );
    assert_eq!(st["conditions"][0]["type"], "Ready");
    assert_eq!(st["conditions"][0]["status"], "True");
    assert_eq!(st["conditions"][0]["reason"], "UrlIssued");

    let (_, ev) = &seen[3];
    assert_eq!(ev["reason"], "UrlIssued");
    assert_eq!(ev["type"], "Normal");
    assert!(ev["note"].as_str().unwrap().contains("INC-42 disk full"));
    assert!(!ev.to_string().contains("wss"), "no URL in Events");

    let stats = f.sim.stats();
    assert_eq!(
        stats.count("DescribeInstances", "Success"),
        1,
        "OSType asked once"
    );
    assert_eq!(stats.count("DescribeInstanceVncUrl", "Success"), 1);
    let metrics = f.ctx.metrics.encode();
    assert!(
        metrics.contains("ecsvnc_url_issue_duration_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ecsvnc_reconciles_total{result="ok"} 1"#),
        "{metrics}"
    );
    let wait = requeue_secs(&action);
    assert!(
        wait > 10.0 && wait <= 15.1,
        "next look when the URL expires, got {wait}"
    );
}

#[tokio::test]
async fn an_expired_window_is_recorded_without_any_ecs_call() {
    let mut f = fixture().await;
    let s = issued("db-1", 20);
    let (action, seen) = run(&mut f, &s, vec![status_patch("db-1"), event()]).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["phase"], "UrlExpired");
    assert_eq!(st["refreshable"], true);
    assert!(
        st.get("consoleUrl").is_none() && st.get("vncUrl").is_none(),
        "URLs leave with Ready"
    );
    assert_eq!(seen[1].1["reason"], "UrlExpired");
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    let wait = requeue_secs(&action);
    assert!(
        wait > 290.0 && wait <= 295.1,
        "next look at sessionExpiresAt, got {wait}"
    );
}

#[tokio::test]
async fn an_expired_session_makes_no_call_at_all() {
    let mut f = fixture().await;
    let s = with_status(issued("db-1", 1000), |st| {
        st.phase = Some(crate::session::crd::Phase::Expired);
        st.console_url = None;
        st.vnc_url = None;
        st.refreshable = true;
    });
    let (action, _) = run(&mut f, &s, vec![]).await;
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), f.api.next_request())
            .await
            .is_err(),
        "no Kubernetes call either"
    );
}

/// The API server's answer to a write whose resourceVersion is no longer current.
fn conflict() -> (u16, Value) {
    (
        409,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
    )
}

/// An `Expired` session that served refresh value "a" and is now asked for "b".
fn expired_and_asked_to_refresh(name: &str) -> VncSession {
    let mut s = with_status(issued(name, 1000), |st| {
        st.phase = Some(crate::session::crd::Phase::Expired);
        st.observed_refresh = Some("a".into());
        st.refreshable = true;
    });
    s.metadata.annotations = Some([("ecsvnc.dev/refresh".to_owned(), "b".to_owned())].into());
    s
}

#[tokio::test]
async fn a_new_refresh_value_issues_one_url_and_records_it() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    let (_, seen) = run(
        &mut f,
        &s,
        vec![secret_read(), status_patch("db-1"), event()],
    )
    .await;
    let st = &seen[1].1["status"];
    assert_eq!(st["phase"], "Ready");
    assert_eq!(st["observedRefresh"], "b");
    assert_eq!(st["refreshCount"], 1);
    assert_eq!(seen[2].1["reason"], "RefreshRequested");
    let stats = f.sim.stats();
    assert_eq!(stats.total("DescribeInstanceVncUrl"), 1);
    assert_eq!(
        stats.total("DescribeInstances"),
        0,
        "isWindows is remembered in status"
    );
}

#[tokio::test]
async fn the_ttl_closes_the_grant_without_reading_the_secret() {
    let mut f = fixture().await;
    let mut s = issued("db-1", 5);
    s.spec.ttl = Some("5s".into());
    let (action, seen) = run(&mut f, &s, vec![status_patch("db-1"), event()]).await;
    assert_eq!(seen[0].1["status"]["phase"], "Closed");
    assert_eq!(seen[0].1["status"]["refreshable"], false);
    assert!(seen[0].1["status"].get("consoleUrl").is_none());
    assert_eq!(seen[1].1["reason"], "Closed");
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
}

#[tokio::test]
async fn a_missing_secret_fails_with_credentials_not_found() {
    let mut f = fixture().await;
    let s = session("db-1");
    let (action, seen) = run(
        &mut f,
        &s,
        vec![
            pending_patch("db-1"),
            Expect {
                method: "GET",
                path: format!("/api/v1/namespaces/{NS}/secrets/ecs-credentials"),
                reply: not_found(),
            },
            status_patch("db-1"),
            event(),
        ],
    )
    .await;
    let st = &seen[2].1["status"];
    assert_eq!(st["phase"], "Failed");
    assert_eq!(st["refreshable"], false);
    assert_eq!(st["conditions"][0]["reason"], "CredentialsNotFound");
    assert!(
        st["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("team-a/ecs-credentials")
    );
    assert_eq!(seen[3].1["reason"], "CredentialsNotFound");
    assert_eq!(seen[3].1["type"], "Warning");
    assert_eq!(
        action,
        Action::await_change(),
        "waits for the Secret watch, no polling"
    );
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
}

#[tokio::test]
async fn a_secret_without_its_keys_names_the_missing_key() {
    use base64::Engine;
    let mut f = fixture().await;
    let s = session("db-1");
    let partial = secret(
        json!({"accessKeyId": base64::engine::general_purpose::STANDARD.encode("sim-access-key-id")}),
    );
    let (_, seen) = run(&mut f, &s, first_issue_steps("db-1", partial)).await;
    let st = &seen[2].1["status"];
    assert_eq!(st["conditions"][0]["reason"], "CredentialsNotFound");
    assert!(
        st["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("accessKeySecret"),
        "{st}"
    );
    assert_eq!(
        st["credentialsVersion"], "77",
        "a change of this Secret retries"
    );
}

#[tokio::test]
async fn a_credentials_ref_cannot_reach_another_namespace() {
    let mut f = fixture().await;
    let mut raw = session_json(&session("db-1"));
    raw["spec"]["credentialsRef"] = json!({"name": "ecs-credentials", "namespace": "kube-system"});
    let s: VncSession = serde_json::from_value(raw.clone()).unwrap();
    let (_, seen) = run(
        &mut f,
        &s,
        vec![
            pending_patch("db-1"),
            // The only Secret read is in the session's own namespace.
            secret_read(),
            status_patch("db-1"),
            event(),
        ],
    )
    .await;
    assert_eq!(seen[2].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn without_a_ref_or_operator_credentials_the_condition_says_so() {
    let mut f = fixture_with(|s| {
        s.operator_credentials_scope = super::OperatorCredentialsScope::Everywhere;
    })
    .await;
    let mut s = session("db-1");
    s.spec.credentials_ref = None;
    let (_, seen) = run(
        &mut f,
        &s,
        vec![pending_patch("db-1"), status_patch("db-1"), event()],
    )
    .await;
    let message = seen[1].1["status"]["lastError"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{message}");
}

#[tokio::test]
async fn operator_credentials_serve_sessions_without_a_ref() {
    let mut f = fixture_with(|s| {
        s.credentials = Some(Arc::new(OperatorCredentials::access_key(sim_credentials())));
        // Offered to this namespace only.
        s.operator_credentials_scope = super::OperatorCredentialsScope::parse(NS).unwrap();
    })
    .await;
    let mut s = session("db-1");
    s.spec.credentials_ref = None;
    let (_, seen) = run(
        &mut f,
        &s,
        vec![pending_patch("db-1"), status_patch("db-1"), event()],
    )
    .await;
    assert_eq!(seen[1].1["status"]["phase"], "Ready");
}

async fn issue_against(f: &mut Fixture, s: &VncSession) -> Vec<(String, Value)> {
    let name = s.metadata.name.clone().unwrap();
    run(f, s, first_issue_steps(&name, good_secret())).await.1
}

#[tokio::test]
async fn terminal_ecs_errors_fail_without_retry() {
    for (instance, region, code) in [
        (
            "i-doesnotexist",
            "cn-hangzhou",
            "InvalidInstanceId.NotFound",
        ),
        (LINUX, "cn-shanghai", "InvalidRegionInstance"),
        (LINUX, "eu-nowhere-1", "InvalidRegionId.NotFound"),
    ] {
        // The operator was told the region exists (--extra-regions); ECS says it does not.
        let mut f = fixture_with(|s| {
            s.regions = crate::aliyun::Regions::parse("eu-nowhere-1").unwrap();
        })
        .await;
        let mut s = session("db-1");
        s.spec.instance_id = instance.into();
        s.spec.region_id = region.into();
        s.spec.is_windows = Some(false);
        let seen = issue_against(&mut f, &s).await;
        let st = &seen[2].1["status"];
        assert_eq!(st["phase"], "Failed", "{code}");
        assert_eq!(st["refreshable"], false, "{code}");
        assert_eq!(st["lastError"]["code"], code);
        assert!(st.get("retryAt").is_none(), "{code}");
        assert!(
            !st["lastError"]["message"]
                .as_str()
                .unwrap()
                .contains("RequestId")
        );
        assert_eq!(seen[3].1["reason"], "IssueFailed");
        assert_eq!(
            f.sim.stats().total("DescribeInstanceVncUrl"),
            1,
            "{code}: no retry"
        );
    }
}

#[tokio::test]
async fn bad_credentials_are_terminal_until_the_secret_changes() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut f = fixture().await;
    let s = session("db-1");
    let wrong =
        secret(json!({"accessKeyId": b64("sim-access-key-id"), "accessKeySecret": b64("wrong")}));
    let (_, seen) = run(&mut f, &s, first_issue_steps("db-1", wrong)).await;
    let st = &seen[2].1["status"];
    assert_eq!(st["lastError"]["code"], "SignatureDoesNotMatch");
    assert_eq!(st["refreshable"], false);
    let message = st["lastError"]["message"].as_str().unwrap();
    assert!(
        !message.contains("AccessKeyId"),
        "no string-to-sign in status: {message}"
    );
}

#[tokio::test]
async fn retryable_ecs_errors_back_off_per_object() {
    let mut f = fixture().await;
    f.sim.inject(Fault {
        action: Some("DescribeInstanceVncUrl".into()),
        instance_id: None,
        kind: FaultKind::InternalError,
        count: 10,
    });
    let mut s = session("db-1");
    s.spec.is_windows = Some(true);
    let seen = issue_against(&mut f, &s).await;
    let st = &seen[2].1["status"];
    assert_eq!(st["phase"], "Failed");
    assert_eq!(st["refreshable"], true);
    assert_eq!(st["lastError"]["code"], "InternalError");
    assert_eq!(st["consecutiveFailures"], 1);
    assert!(st["retryAt"].is_string());
    assert_eq!(seen[3].1["type"], "Warning");
    assert_eq!(
        f.sim.stats().total("DescribeInstanceVncUrl"),
        2,
        "the client's bounded inner retry"
    );
}

#[tokio::test]
async fn ecs_throttling_is_reported_as_throttled() {
    let mut f = fixture().await;
    f.sim.inject(Fault {
        action: None,
        instance_id: None,
        kind: FaultKind::Throttling,
        count: 10,
    });
    let mut s = session("db-1");
    s.spec.is_windows = Some(false);
    let seen = issue_against(&mut f, &s).await;
    assert_eq!(seen[2].1["status"]["conditions"][0]["reason"], "Throttled");
    assert_eq!(seen[3].1["reason"], "Throttled");
    let metrics = f.ctx.metrics.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l == "ecsvnc_throttled_issues_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_per_instance_limit_counts_across_sessions() {
    let mut f = fixture_with(|s| s.reconnect_limit_per_minute = 1).await;
    let mut first = session("db-1");
    first.spec.is_windows = Some(false);
    let seen = issue_against(&mut f, &first).await;
    assert_eq!(seen[2].1["status"]["phase"], "Ready");

    let mut second = session("db-2");
    second.spec.is_windows = Some(false);
    let (action, seen) = run(&mut f, &second, first_issue_steps("db-2", good_secret())).await;
    let st = &seen[2].1["status"];
    assert_eq!(st["phase"], "Pending");
    assert_eq!(st["conditions"][0]["reason"], "Throttled");
    assert_eq!(seen[3].1["reason"], "Throttled");
    assert_eq!(
        f.sim.stats().total("DescribeInstanceVncUrl"),
        1,
        "the throttled issue made no ECS call"
    );
    let metrics = f.ctx.metrics.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l == "ecsvnc_throttled_issues_total 1"),
        "{metrics}"
    );
    let wait = requeue_secs(&action);
    assert!(
        wait > 55.0 && wait <= 61.1,
        "requeued when the slot frees (rounded up to a whole second), got {wait}"
    );
}

#[tokio::test]
async fn a_cached_copy_older_than_our_own_write_waits_for_the_watch() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    // The refresh is served; the watch cache still holds the version that was written over.
    run(
        &mut f,
        &s,
        vec![secret_read(), status_patch("db-1"), event()],
    )
    .await;
    // The same stale copy again: no call at all, neither to the API server nor to ECS.
    let (action, seen) = run(&mut f, &s, vec![]).await;
    assert!(seen.is_empty());
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 1, "one URL");
}

#[tokio::test]
async fn a_session_deleted_during_the_ecs_call_ends_quietly() {
    let mut f = fixture().await;
    let s = session("db-1");
    let (action, _) = run(
        &mut f,
        &s,
        vec![
            pending_patch("db-1"),
            secret_read(),
            Expect {
                method: "PATCH",
                path: format!("{SESSIONS}/db-1/status"),
                reply: not_found(),
            },
        ],
    )
    .await;
    assert_eq!(
        action,
        Action::await_change(),
        "no Event for a gone object, no retry"
    );
}

#[tokio::test]
async fn a_conflicting_expiry_write_waits_for_the_newer_version() {
    let mut f = fixture().await;
    let s = issued("db-1", 20);
    let (action, _) = run(
        &mut f,
        &s,
        vec![Expect {
            method: "PATCH",
            path: format!("{SESSIONS}/db-1/status"),
            reply: conflict(),
        }],
    )
    .await;
    // Decided on the cached copy without a read: the 409 says a newer version exists, and its
    // watch event brings the session back.
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_change_during_the_ecs_call_costs_no_second_url() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    let mut labelled = session_json(&s);
    labelled["metadata"]["resourceVersion"] = json!("12");
    labelled["metadata"]["labels"] = json!({"team": "db"});
    let (action, seen) = run(
        &mut f,
        &s,
        vec![
            secret_read(),
            // Someone labelled the session while ECS answered.
            status_conflict("db-1"),
            get(format!("{SESSIONS}/db-1"), labelled),
            status_patch("db-1"),
            event(),
        ],
    )
    .await;
    assert_eq!(seen[1].1["metadata"]["resourceVersion"], "10");
    assert_eq!(
        seen[3].1["metadata"]["resourceVersion"], "12",
        "the same outcome, written onto the newer version"
    );
    assert_eq!(seen[3].1["status"], seen[1].1["status"]);
    assert_eq!(seen[3].1["status"]["phase"], "Ready");
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 1, "one URL");
    assert!(matches!(action, a if a != Action::requeue(Duration::ZERO)));
    // Both versions are now known to be older than the write.
    let (_, seen) = run(&mut f, &s, vec![]).await;
    assert!(seen.is_empty());
}

#[tokio::test]
async fn an_outcome_whose_session_was_deleted_meanwhile_is_dropped() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    let (action, _) = run(
        &mut f,
        &s,
        vec![
            secret_read(),
            status_conflict("db-1"),
            Expect {
                method: "GET",
                path: format!("{SESSIONS}/db-1"),
                reply: not_found(),
            },
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn an_invalid_spec_from_an_old_schema_fails_naming_the_field() {
    let mut f = fixture().await;
    let mut s = session("db-1");
    s.spec.instance_id = "not-an-instance".into();
    let (_, seen) = run(&mut f, &s, vec![status_patch("db-1"), event()]).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["lastError"]["code"], "InvalidSpec");
    assert!(
        st["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.instanceId")
    );
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
}

/// A TCP listener standing for an attacker's endpoint: counts every connection it is offered.
async fn trap() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (format!("http://{addr}"), hits)
}

fn failed_steps(name: &str) -> Vec<Expect> {
    vec![pending_patch(name), status_patch(name), event()]
}

#[tokio::test]
async fn an_endpoint_outside_the_allow_list_gets_nothing_not_even_a_secret_read() {
    let (trap_url, hits) = trap().await;
    // With a namespace Secret and with the operator's own credentials offered: neither is sent.
    for use_operator_credentials in [false, true] {
        let mut f = fixture_with(|s| {
            s.credentials = Some(Arc::new(OperatorCredentials::access_key(Credentials::new(
                "op-key-id",
                "op-key-secret",
                None,
            ))));
            s.operator_credentials_scope = super::OperatorCredentialsScope::Everywhere;
        })
        .await;
        let mut s = session("evil-1");
        s.spec.endpoint = Some(trap_url.clone());
        if use_operator_credentials {
            s.spec.credentials_ref = None;
        }
        let (_, seen) = run(&mut f, &s, failed_steps("evil-1")).await;
        let st = &seen[1].1["status"];
        assert_eq!(st["phase"], "Failed");
        assert_eq!(st["refreshable"], false);
        assert_eq!(st["lastError"]["code"], "EndpointNotAllowed");
        let message = st["lastError"]["message"].as_str().unwrap();
        assert!(
            message.contains("spec.endpoint") && message.contains("--allowed-endpoints"),
            "{message}"
        );
        let stalled = st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Stalled")
            .unwrap();
        assert_eq!(stalled["status"], "True");
        assert_eq!(seen[2].1["reason"], "IssueFailed");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "not one byte"
    );
}

#[tokio::test]
async fn an_allowed_endpoint_is_used() {
    let mut f = fixture().await;
    let sim_endpoint = f.sim.endpoint();
    let mut s = session("vpc-1");
    s.spec.endpoint = Some(sim_endpoint.clone());
    // Allowed by pattern, not because it is the operator's own endpoint.
    let ctx = Arc::get_mut(&mut f.ctx).unwrap();
    ctx.settings.ecs_endpoint = None;
    ctx.settings.allowed_endpoints =
        crate::aliyun::AllowedEndpoints::parse(&format!("https://*.aliyuncs.com,{sim_endpoint}"))
            .unwrap();
    let (_, seen) = run(&mut f, &s, first_issue_steps("vpc-1", good_secret())).await;
    assert_eq!(seen[2].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn a_namespace_not_offered_operator_credentials_makes_no_ecs_call() {
    let mut f = fixture_with(|s| {
        s.credentials = Some(Arc::new(OperatorCredentials::access_key(sim_credentials())));
        s.operator_credentials_scope =
            super::OperatorCredentialsScope::parse("ops,break-glass").unwrap();
    })
    .await;
    let mut s = session("own-1");
    s.spec.credentials_ref = None;
    let (_, seen) = run(&mut f, &s, failed_steps("own-1")).await;
    let st = &seen[1].1["status"];
    assert_eq!(st["lastError"]["code"], "CredentialsNotFound");
    let message = st["lastError"]["message"].as_str().unwrap();
    assert!(
        message.contains("--operator-credentials-namespaces") && message.contains(NS),
        "{message}"
    );
    assert_eq!(seen[2].1["reason"], "CredentialsNotFound");
    assert_eq!(f.sim.stats().calls.len(), 0, "no ECS call");
}

#[tokio::test]
async fn a_secret_name_with_a_path_is_refused_before_any_api_call() {
    let mut f = fixture().await;
    let mut s = session("path-1");
    s.spec.credentials_ref = Some(crate::session::crd::CredentialsRef {
        name: "../kube-system/x".into(),
    });
    // A status write and its Event; no read of the session, no Secret, no ECS call.
    let (_, seen) = run(&mut f, &s, vec![status_patch("path-1"), event()]).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["phase"], "Failed");
    assert_eq!(st["lastError"]["code"], "InvalidSpec");
    assert!(
        st["lastError"]["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.credentialsRef.name"),
        "{st}"
    );
    assert_eq!(f.sim.stats().calls.len(), 0);
}

fn secret_meta(version: &str) -> kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Secret> {
    serde_json::from_value(json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": "ecs-credentials", "namespace": NS, "resourceVersion": version},
    }))
    .unwrap()
}

#[tokio::test]
async fn a_refresh_costs_two_api_requests_once_the_secret_is_known_unchanged() {
    use kube::runtime::watcher::Event;
    let mut f = fixture().await;
    f.ctx.secrets.observe(&Event::Apply(secret_meta("77")));
    // First refresh: the Secret is read once (resourceVersion 77, as the watch says).
    let s = expired_and_asked_to_refresh("db-1");
    run(
        &mut f,
        &s,
        vec![secret_read(), status_patch("db-1"), event()],
    )
    .await;
    // Next refresh of another session using it: the status patch and the Event, nothing else.
    let mut s = expired_and_asked_to_refresh("db-2");
    s.metadata.resource_version = Some("20".into());
    let (_, seen) = run(&mut f, &s, vec![status_patch("db-2"), event()]).await;
    assert_eq!(seen[0].1["status"]["phase"], "Ready");
    // The Secret changes: read again.
    f.ctx.secrets.observe(&Event::Apply(secret_meta("78")));
    let mut s = expired_and_asked_to_refresh("db-3");
    s.metadata.resource_version = Some("30".into());
    run(
        &mut f,
        &s,
        vec![secret_read(), status_patch("db-3"), event()],
    )
    .await;
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 3);
}

#[tokio::test]
async fn a_deleted_sessions_bookkeeping_goes_with_it() {
    let f = fixture().await;
    let s = session("db-1");
    f.ctx.record_failure(&super::context::session_key(&s));
    f.ctx.superseded.record("uid-db-1", vec!["10".into()]);
    assert_eq!(f.ctx.failures_len(), 1);
    f.ctx.forget_session(&s);
    assert_eq!(f.ctx.failures_len(), 0);
    assert!(!f.ctx.superseded.is_stale("uid-db-1", "10"));
    // A re-list that no longer names a session drops what was kept for it.
    f.ctx.record_failure("team-a/gone");
    f.ctx.retain_sessions(&[Arc::new(s)]);
    assert_eq!(f.ctx.failures_len(), 0);
}

#[tokio::test]
async fn a_session_throttled_by_an_earlier_process_asks_the_limiter_of_now() {
    let mut f = fixture().await;
    // Throttled under an older, lower limit: the stored retry time is 50 s away, but this
    // process's limiter has a slot free now.
    let s = with_status(session("db-1"), |st| {
        st.phase = Some(crate::session::crd::Phase::Pending);
        st.retry_at = Some(Time(Timestamp::now() + SignedDuration::from_secs(50)));
        st.last_error = Some(crate::session::crd::LastError {
            code: "Throttled".into(),
            message: "at most 1 console URLs per minute".into(),
        });
    });
    let (_, seen) = run(
        &mut f,
        &s,
        vec![secret_read(), status_patch("db-1"), event()],
    )
    .await;
    assert_eq!(seen[1].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn a_region_outside_the_sdks_table_fails_with_invalid_region_id_and_nothing_is_sent() {
    // ecs.oss-accelerate.aliyuncs.com is an OSS bucket's host, not ECS.
    let mut f = fixture().await;
    let mut s = session("oss-1");
    s.spec.region_id = "oss-accelerate".into();
    let (_, seen) = run(&mut f, &s, failed_steps("oss-1")).await;
    let st = &seen[1].1["status"];
    assert_eq!(st["phase"], "Failed");
    assert_eq!(st["refreshable"], false);
    assert_eq!(st["lastError"]["code"], "InvalidRegionId");
    let message = st["lastError"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"oss-accelerate\"")
            && message.contains("--extra-regions")
            && message.contains("nothing was sent"),
        "{message}"
    );
    assert_eq!(seen[2].1["reason"], "IssueFailed");
    assert_eq!(f.sim.stats().calls.len(), 0, "no ECS call");
}

#[tokio::test]
async fn an_endpoint_a_url_parser_would_reinterpret_gets_nothing_even_when_its_host_is_allowed() {
    let (trap_url, hits) = trap().await;
    for endpoint in [
        // WHATWG parsers read this as {trap}/2016-08-15/proxy/svc/fn/.
        format!(r"{trap_url}\2016-08-15\proxy\svc\fn\"),
        format!("{trap_url}%2F2016-08-15%2Fproxy"),
        format!("{trap_url}/2016-08-15/proxy/svc/fn/"),
    ] {
        let mut f = fixture_with(|s| {
            s.allowed_endpoints = crate::aliyun::AllowedEndpoints::parse(&trap_url).unwrap();
        })
        .await;
        let mut s = session("fc-1");
        s.spec.endpoint = Some(endpoint.clone());
        // Refused by the spec rules: a status write and its Event, no Secret read, no ECS call.
        let (_, seen) = run(&mut f, &s, vec![status_patch("fc-1"), event()]).await;
        let st = &seen[0].1["status"];
        assert_eq!(st["phase"], "Failed", "{endpoint}");
        assert_eq!(st["lastError"]["code"], "InvalidSpec", "{endpoint}");
        assert!(
            st["lastError"]["message"]
                .as_str()
                .unwrap()
                .starts_with("spec.endpoint"),
            "{st}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "not one byte"
    );
}

#[path = "isolation_tests.rs"]
mod isolation;
