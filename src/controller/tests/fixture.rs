//! The one fixture every reconcile scenario uses: a `Context` on kube-rs's `tower-test` mock API
//! server and a real in-process `ecs-sim`, sessions as the watch cache hands them over, and the
//! expected Kubernetes calls, served in order.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use crate::aliyun::{
    ClientOptions, Credentials, EcsClient, Endpoint, RetryPolicy, StsClient, StsOptions,
};
use crate::controller::{Context, Settings, reconcile};
use crate::plugin::mock::{next_request, respond};
use crate::session::expiry::Limits;
use crate::session::{VncSession, VncSessionStatus};
use crate::sim::{self, SimConfig, SimHandle};

pub const NS: &str = "team-a";

pub const LINUX: &str = "i-bp1hzoinajzkh91h1234";

pub const SESSIONS: &str = "/apis/ecsvnc.dev/v1alpha1/namespaces/team-a/vncsessions";

pub use crate::plugin::mock::Handle;

pub struct Fixture {
    pub ctx: Arc<Context>,
    pub api: Handle,
    pub sim: SimHandle,
}

pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

pub async fn fixture_with(tune: impl FnOnce(&mut Settings)) -> Fixture {
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
        operator_credentials_scope: crate::controller::OperatorCredentialsScope::Nowhere,
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
pub fn session(name: &str) -> VncSession {
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

pub fn with_status(mut s: VncSession, edit: impl FnOnce(&mut VncSessionStatus)) -> VncSession {
    let mut status = s.status.take().unwrap_or_default();
    status.observed_generation = Some(1);
    edit(&mut status);
    s.status = Some(status);
    s
}

/// A session whose Secret name is a path out of its namespace: refused by the spec rules.
pub fn session_naming_a_secret_path(name: &str) -> VncSession {
    let mut s = session(name);
    s.spec.credentials_ref = Some(crate::session::crd::CredentialsRef {
        name: "../kube-system/x".into(),
    });
    s
}

/// A session that names no credentials of its own: the operator's serve it, where offered.
pub fn session_without_ref(name: &str) -> VncSession {
    let mut s = session(name);
    s.spec.credentials_ref = None;
    s
}

/// A session that was issued a URL `ago` seconds back.
pub fn issued(name: &str, ago: i64) -> VncSession {
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

/// An `Expired` session that served refresh value "a" and is now asked for "b".
pub fn expired_and_asked_to_refresh(name: &str) -> VncSession {
    let mut s = with_status(issued(name, 1000), |st| {
        st.phase = Some(crate::session::crd::Phase::Expired);
        st.observed_refresh = Some("a".into());
        st.refreshable = true;
    });
    s.metadata.annotations = Some([("ecsvnc.dev/refresh".to_owned(), "b".to_owned())].into());
    s
}

pub fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "ecs-credentials", "namespace": NS, "resourceVersion": "77"},
           "data": data})
}

pub fn good_secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    secret(
        json!({"accessKeyId": b64("sim-access-key-id"), "accessKeySecret": b64("sim-access-key-secret")}),
    )
}

/// The AccessKey `ecs-sim`'s demo account accepts.
pub fn sim_credentials() -> Credentials {
    Credentials::new("sim-access-key-id", "sim-access-key-secret", None)
}

pub fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// The API server's answer to a write whose resourceVersion is no longer current.
pub fn conflict() -> (u16, Value) {
    (
        409,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
    )
}

/// One expected request: method, path (without query), and the answer to give.
pub struct Expect {
    pub method: &'static str,
    pub path: String,
    pub reply: (u16, Value),
}

/// A write of the session's status, answered with `reply`.
pub fn status_write(name: &str, reply: (u16, Value)) -> Expect {
    Expect {
        method: "PATCH",
        path: format!("{SESSIONS}/{name}/status"),
        reply,
    }
}

/// A read of the session itself, answered with `reply`.
pub fn session_get(name: &str, reply: (u16, Value)) -> Expect {
    Expect {
        method: "GET",
        path: format!("{SESSIONS}/{name}"),
        reply,
    }
}

/// The read of the session's Secret, answered with `reply`.
pub fn secret_get(reply: (u16, Value)) -> Expect {
    Expect {
        method: "GET",
        path: format!("/api/v1/namespaces/{NS}/secrets/ecs-credentials"),
        reply,
    }
}

/// Serves `steps` in order and returns each request's query and JSON body; fails on anything else.
pub async fn serve(api: &mut Handle, steps: Vec<Expect>) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for step in steps {
        let request = next_request(api, step.method, &step.path).await;
        let (code, reply) = step.reply;
        let reply = if code == 200 && reply.is_null() {
            &request.body
        } else {
            &reply
        };
        respond(request.send, code, serde_json::to_vec(reply).unwrap());
        seen.push((request.query, request.body));
    }
    seen
}

/// The status write; answered with the object as the API server would return it.
pub fn status_patch(name: &str) -> Expect {
    let mut obj = session_json(&session(name));
    obj["status"] = json!({});
    status_write(name, (200, obj))
}

/// The Pending status written before the first ECS call; answered with a new resourceVersion.
pub fn pending_patch(name: &str) -> Expect {
    let mut obj = session_json(&session(name));
    obj["metadata"]["resourceVersion"] = json!("11");
    obj["status"] = json!({"phase": "Pending"});
    status_write(name, (200, obj))
}

/// A status write refused with 409: someone else wrote the session first.
pub fn status_conflict(name: &str) -> Expect {
    status_write(name, conflict())
}

/// The read of the session's Secret, answered with good credentials.
pub fn secret_read() -> Expect {
    secret_get((200, good_secret()))
}

pub fn event() -> Expect {
    Expect {
        method: "POST",
        path: format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        reply: (200, Value::Null),
    }
}

/// The calls of a first issue: Pending, the Secret, the status, the Event (no read of the session).
pub fn first_issue_steps(name: &str, secret: Value) -> Vec<Expect> {
    vec![
        pending_patch(name),
        secret_get((200, secret)),
        status_patch(name),
        event(),
    ]
}

/// The calls of an issue that reads no Secret: Pending, the status, the Event.
pub fn no_secret_steps(name: &str) -> Vec<Expect> {
    vec![pending_patch(name), status_patch(name), event()]
}

/// The calls of a first issue whose Secret is not there: Pending, the 404, the status, the Event.
pub fn missing_secret_steps(name: &str) -> Vec<Expect> {
    vec![
        pending_patch(name),
        secret_get(not_found()),
        status_patch(name),
        event(),
    ]
}

/// The calls of an issue on a session that has a status already (a refresh, a retry): the
/// Secret, the status, the Event; no Pending write.
pub fn reissue_steps(name: &str) -> Vec<Expect> {
    vec![secret_read(), status_patch(name), event()]
}

/// The calls of an outcome decided without ECS or the Secret: the status write and its Event.
pub fn decided_steps(name: &str) -> Vec<Expect> {
    vec![status_patch(name), event()]
}

pub fn session_json(s: &VncSession) -> Value {
    serde_json::to_value(s).unwrap()
}

pub async fn run(
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

pub async fn issue_against(f: &mut Fixture, s: &VncSession) -> Vec<(String, Value)> {
    let name = s.metadata.name.clone().unwrap();
    run(f, s, first_issue_steps(&name, good_secret())).await.1
}

/// Asserts that one line of the operator's metrics reads exactly `line`.
pub fn assert_metric_line(f: &Fixture, line: &str) {
    let metrics = f.ctx.metrics.encode();
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}

pub fn requeue_secs(action: &Action) -> f64 {
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

/// Asserts that `action` requeues after more than `low` and at most `high` seconds.
pub fn assert_requeued_within(action: &Action, low: f64, high: f64, when: &str) {
    let wait = requeue_secs(action);
    assert!(wait > low && wait <= high, "{when}, got {wait}");
}

/// Asserts a `Failed` status that no retry will change, with `code`; returns its message.
pub fn assert_failed_for_good<'a>(st: &'a Value, code: &str) -> &'a str {
    assert_eq!(st["phase"], "Failed", "{code}");
    assert_eq!(st["refreshable"], false, "{code}");
    assert_eq!(st["lastError"]["code"], code);
    st["lastError"]["message"].as_str().unwrap()
}

/// A TCP listener standing for an attacker's endpoint: counts every connection it is offered.
pub async fn trap() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
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
