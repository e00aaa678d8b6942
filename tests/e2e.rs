//! End to end against a real kube-apiserver (built from Debian's kubernetes source), ecs-sim and
//! the operator binary running as the ServiceAccount of `deploy/`.
//! Run with `scripts/test.sh` (or `cargo test --test e2e -- --include-ignored` once
//! `scripts/local-cluster.sh build` has built the control plane).

mod support;

use std::time::Duration;

use ecs_vnc_operator::sim::{Fault, FaultKind};
use serde_json::json;
use support::ecs_sim::{LINUX, SIM_KEY_ID, SIM_KEY_SECRET, VNC, WINDOWS};
use support::env::Env;
use support::operator::Operator;
use support::paths::{example, root};
use support::session_status::phase;
use support::session_wait::WAIT;
use support::waiting::until;

const E2E: &str = "end-to-end: needs the local control plane; run scripts/test.sh";

/// ECS answers `DescribeInstanceVncUrl` only after `delay`, once.
fn delay_next_url(env: &Env, delay: Duration) {
    env.sim.inject(Fault {
        action: Some(VNC.into()),
        instance_id: None,
        kind: FaultKind::Delay(delay),
        count: 1,
    });
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn an_applied_session_becomes_ready_with_a_working_console_url() {
    let _ = E2E;
    let env = Env::new("ready").await;
    let _op = env.operator(&[]);
    env.apply_ok(&env.session("web-1", json!({})));
    env.apply_ok(&env.session("win-1", json!({"instanceId": WINDOWS})));
    let s = env.wait_phase("web-1", "Ready", WAIT).await;
    let st = s.status.unwrap();
    let vnc = st.vnc_url.clone().unwrap();
    assert_eq!(
        st.console_url.as_deref().unwrap(),
        format!(
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl={vnc}&instanceId={LINUX}&isWindows=false"
        )
    );
    // The VncUrl is ECS's percent-encoded websocket address, passed through untouched.
    let decoded = ecs_vnc_operator::aliyun::signature::percent_decode(&vnc).unwrap();
    assert!(
        decoded.starts_with("wss://") && decoded.contains("/websockify/?s="),
        "{decoded}"
    );
    assert_eq!(st.is_windows, Some(false));
    assert!(!st.refreshable);
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "UrlIssued")
    );

    let win = env.wait_phase("win-1", "Ready", WAIT).await.status.unwrap();
    assert_eq!(
        win.is_windows,
        Some(true),
        "OSType read from DescribeInstances"
    );
    assert!(win.console_url.unwrap().ends_with("&isWindows=true"));

    kubectl_shows_the_ready_session(&env);
}

/// `kubectl get` shows the Ready `web-1` in the CRD's printer columns, by short name and
/// category too, and `kubectl wait` waits on its condition.
fn kubectl_shows_the_ready_session(env: &Env) {
    let table = env.kubectl_ok(&["-n", &env.ns, "get", "vncsessions"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "INSTANCE",
            "REGION",
            "PHASE",
            "URL",
            "EXPIRES",
            "REFRESHABLE",
            "AGE"
        ]
    );
    let row = table.lines().find(|l| l.starts_with("web-1")).unwrap();
    assert!(
        row.contains(LINUX)
            && row.contains("cn-hangzhou")
            && row.contains("Ready")
            && row.contains("false"),
        "{row}"
    );
    assert!(
        !row.contains("<invalid>"),
        "future times show as strings: {row}"
    );
    // Short name and category work too.
    assert!(
        env.kubectl_ok(&["-n", &env.ns, "get", "vnc"])
            .contains("web-1")
    );
    assert!(
        env.kubectl_ok(&["-n", &env.ns, "get", "ecsvnc"])
            .contains("web-1")
    );
    // And `kubectl wait` on the condition.
    env.kubectl_ok(&[
        "-n",
        &env.ns,
        "wait",
        "--for=condition=Ready",
        "vncsession/web-1",
        "--timeout=10s",
    ]);
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn urls_expire_on_time_and_each_refresh_costs_exactly_one_ecs_call() {
    let env = Env::new("expiry").await;
    let op = env.operator(&["--url-validity", "2s", "--session-keepalive", "3s"]);
    let ready = env.apply_ready("db-1", json!({"isWindows": false})).await;
    let token = ready.status.as_ref().unwrap().vnc_url.clone().unwrap();

    let expired = env.wait_phase("db-1", "UrlExpired", WAIT).await;
    let st = expired.status.unwrap();
    assert!(st.refreshable);
    assert_eq!(
        (st.console_url, st.vnc_url),
        (None, None),
        "URL removed from status"
    );
    let gone = env.wait_phase("db-1", "Expired", WAIT).await;
    assert!(gone.status.unwrap().refreshable);

    // Expired and nobody asks: no ECS calls at all.
    let calls = env.sim.stats().total("DescribeInstanceVncUrl");
    assert_eq!(calls, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.stats().total("DescribeInstanceVncUrl"),
        1,
        "an Expired session stays quiet"
    );

    for (i, value) in ["r1", "r2", "r3"].into_iter().enumerate() {
        let s = env.refresh_and_wait("db-1", value, WAIT).await;
        assert_eq!(phase(&s), "Ready");
        assert_eq!(s.status.as_ref().unwrap().refresh_count, i as u32 + 1);
        assert_eq!(
            env.sim.stats().total("DescribeInstanceVncUrl"),
            i as u64 + 2,
            "one call per refresh"
        );
    }
    // Setting the same value again is not a new request.
    env.request_refresh("db-1", "r3").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.sim.stats().total("DescribeInstanceVncUrl"), 4);
    assert_eq!(
        env.sim.stats().total("DescribeInstances"),
        0,
        "isWindows from the spec"
    );

    // Nothing secret in the operator's logs: not the AccessKey secret, not the URL token.
    let logs = op.logs();
    assert!(logs.contains("issuing a console URL"), "logs were captured");
    assert!(!logs.contains(SIM_KEY_SECRET));
    let token_part = token.rsplit("%3D").next().unwrap();
    assert!(
        token_part.len() > 10 && !logs.contains(token_part),
        "URL token leaked to logs"
    );
    assert!(!logs.contains("wss"), "URL leaked to logs");
    // Nor in Events.
    let events = env.kubectl_ok(&["-n", &env.ns, "get", "events.events.k8s.io", "-o", "json"]);
    assert!(
        events.contains("UrlIssued") && events.contains("SessionExpired"),
        "{events}"
    );
    assert!(
        !events.contains("wss") && !events.contains(token_part) && !events.contains(SIM_KEY_SECRET)
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn bad_manifests_are_rejected_by_kubectl_apply_naming_the_field() {
    let env = Env::new("reject").await;
    for (extra, field) in [
        (json!({"instanceId": "web-1"}), "spec.instanceId"),
        (json!({"regionId": "Hangzhou"}), "spec.regionId"),
        (json!({"reason": "x".repeat(1025)}), "spec.reason"),
        (json!({"ttl": "forever"}), "spec.ttl"),
        (json!({"endpoint": "ftp://ecs"}), "spec.endpoint"),
        (json!({"isWindows": "yes"}), "spec.isWindows"),
    ] {
        let out = env.apply(&env.session("bad", extra));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{field} accepted");
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
    let mut missing = env.session("bad", json!({}));
    missing["spec"].as_object_mut().unwrap().remove("regionId");
    let out = env.apply(&missing);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("regionId"));
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_missing_secret_created_later_makes_the_session_ready_without_a_restart() {
    let env = Env::new("secret").await;
    let _op = env.operator(&[]);
    env.apply_ok(&env.session("db-1", json!({"credentialsRef": {"name": "late"}})));
    let failed = env.wait_phase("db-1", "Failed", WAIT).await;
    let st = failed.status.unwrap();
    assert!(!st.refreshable);
    assert_eq!(st.conditions[0].reason, "CredentialsNotFound");
    assert!(st.last_error.unwrap().message.contains("late"));

    env.create_secret("late", SIM_KEY_ID, SIM_KEY_SECRET);
    env.wait_phase("db-1", "Ready", WAIT).await;

    // Wrong credentials are terminal until the Secret changes; fixing the Secret heals it.
    env.create_secret("wrong", SIM_KEY_ID, "not-the-secret");
    env.apply_ok(&env.session(
        "db-2",
        json!({"credentialsRef": {"name": "wrong"}, "isWindows": false}),
    ));
    let failed = env.wait_phase("db-2", "Failed", WAIT).await;
    assert_eq!(
        failed.status.unwrap().last_error.unwrap().code,
        "SignatureDoesNotMatch"
    );
    env.kubectl_ok(&[
        "-n",
        &env.ns,
        "patch",
        "secret",
        "wrong",
        "--type=merge",
        "-p",
        &json!({"stringData": {"accessKeySecret": SIM_KEY_SECRET}}).to_string(),
    ]);
    env.wait_phase("db-2", "Ready", WAIT).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_session_deleted_while_its_ecs_call_is_in_flight() {
    let env = Env::new("delete").await;
    let mut op = env.operator(&[]);
    delay_next_url(&env, Duration::from_secs(3));
    env.apply_ok(&env.session("db-1", json!({"isWindows": false})));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.kubectl_ok(&[
        "-n",
        &env.ns,
        "delete",
        "vncsession",
        "db-1",
        "--wait=false",
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.api().get_opt("db-1").await.unwrap().is_none(),
        "not recreated by a status write"
    );
    assert!(op.running(), "operator survived:\n{}", op.logs());
    // Still serving others.
    env.apply_ready("db-2", json!({"isWindows": false})).await;
    assert!(!op.logs().contains("panicked"));
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_shipped_examples_apply_as_they_are_and_become_ready() {
    let env = Env::new("examples").await;
    let _op = env.operator(&[]);
    // The Secret example overwrites the namespace's Secret with its placeholder AccessKey, which
    // this test's ecs-sim knows; the session example names that Secret.
    for file in ["credentials-secret.yaml", "vncsession.yaml"] {
        let path = example(file);
        env.kubectl_ok(&["-n", &env.ns, "apply", "-f", path.to_str().unwrap()]);
    }
    let s = env.wait_phase("web-1-console", "Ready", WAIT).await;
    let st = s.status.unwrap();
    assert!(
        st.console_url
            .as_deref()
            .unwrap()
            .contains("&instanceId=i-bp1hzoinajzkh91h1234&isWindows=false")
    );
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "UrlIssued");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_operator_serves_metrics_health_and_exits_cleanly_on_sigterm() {
    let (_env, mut op, _) = Env::with_ready_session("ops", "db-1").await;
    let addr = op.metrics_addr().await;
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200, "{}", op.logs());
    // The session gauge reads the operator's own watch cache, which may see the Ready status a
    // moment after the test did: wait for it (bounded), then read the rest from that answer.
    let metrics = support::waiting::poll(
        WAIT,
        Duration::from_millis(100),
        || "the Ready session never showed in ecsvnc_sessions".to_owned(),
        || async {
            let (_, metrics) = get("/metrics").await;
            metrics
                .contains(r#"ecsvnc_sessions{phase="Ready"} 1"#)
                .then_some(metrics)
        },
    )
    .await;
    for sample in [
        r#"ecsvnc_ecs_requests_total{action="DescribeInstanceVncUrl",code="Success"} 1"#,
        r#"ecsvnc_sessions{phase="Ready"} 1"#,
        "ecsvnc_url_issue_duration_seconds_count 1",
    ] {
        assert!(metrics.contains(sample), "{metrics}");
    }
    assert!(!metrics.contains("wss") && !metrics.contains(SIM_KEY_SECRET));
    let status = op.terminate();
    assert!(
        status.success(),
        "exit 0 on SIGTERM, got {status:?}:\n{}",
        op.logs()
    );
}

/// Starts an operator with `--shutdown-grace grace`, makes its first ECS call hang for `delay`,
/// and sends SIGTERM while that call is in flight; returns the exit status and the operator.
async fn sigterm_during_a_call(
    env: &Env,
    grace: &str,
    delay: Duration,
) -> (std::process::ExitStatus, Operator) {
    let mut op = env.operator(&["--shutdown-grace", grace]);
    delay_next_url(env, delay);
    env.apply_ok(&env.session("db-1", json!({"isWindows": false})));
    env.wait_phase("db-1", "Pending", WAIT).await;
    // Pending is written before the Secret is read: wait until the call itself has reached
    // ecs-sim (its delay fault is taken), since a call not yet started at SIGTERM never starts.
    let failure = || "the ECS call never arrived".to_owned();
    let taken = || std::future::ready(env.sim.queued_faults() == 0);
    until(WAIT, Duration::from_millis(20), failure, taken).await;
    let status = op.terminate();
    (status, op)
}

// Multi-threaded: the in-process ecs-sim must keep answering while the test blocks in
// `terminate()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn sigterm_lets_an_ecs_call_in_flight_finish_and_write_its_url() {
    let env = Env::new("drain").await;
    let (status, op) = sigterm_during_a_call(&env, "10s", Duration::from_secs(2)).await;
    assert!(status.success(), "exit 0, got {status:?}:\n{}", op.logs());
    let s = env.api().get("db-1").await.unwrap();
    assert_eq!(
        phase(&s),
        "Ready",
        "the call in flight was finished and recorded:\n{}",
        op.logs()
    );
    assert!(!op.logs().contains("abandoned"), "{}", op.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn sigterm_abandons_a_hung_ecs_call_at_the_grace_deadline() {
    let env = Env::new("abandon").await;
    let (status, op) = sigterm_during_a_call(&env, "1s", Duration::from_secs(8)).await;
    assert!(status.success(), "exit 0, got {status:?}:\n{}", op.logs());
    assert!(
        op.logs()
            .contains("in-flight work abandoned at the shutdown deadline"),
        "{}",
        op.logs()
    );
    let s = env.api().get("db-1").await.unwrap();
    assert_eq!(phase(&s), "Pending", "nothing half-written");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn logs_carry_the_session_in_a_span_and_follow_format_and_filter() {
    // JSON: every line is an object; a reconcile's lines name the session in the span.
    let (env, mut json_op, _) = Env::with_ready_session("logs", "db-1").await;
    assert!(json_op.terminate().success());
    let logs = json_op.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let issuing = lines
        .iter()
        .find(|v| v["message"] == "issuing a console URL")
        .unwrap_or_else(|| panic!("no issue line:\n{logs}"));
    assert_eq!(issuing["span"]["name"], "reconcile", "{issuing}");
    assert_eq!(issuing["span"]["namespace"], env.ns.as_str(), "{issuing}");
    assert_eq!(issuing["span"]["session"], "db-1", "{issuing}");
    assert_eq!(issuing["level"], "INFO");

    // Text, filtered to warnings: the info lines are gone, and nothing is JSON.
    let mut text_op = env.operator_logging(&[], "text", "warn");
    env.refresh_and_wait("db-1", "text-run", WAIT).await;
    assert!(text_op.terminate().success());
    let text = text_op.logs();
    assert!(
        !text.contains("issuing a console URL"),
        "RUST_LOG=warn hides info:\n{text}"
    );
    assert!(
        text.lines().all(|l| !l.trim_start().starts_with('{')),
        "{text}"
    );

    // Text at info: human lines with the span's fields.
    let mut info_op = env.operator_logging(&[], "text", "info");
    env.refresh_and_wait("db-1", "info-run", WAIT).await;
    assert!(info_op.terminate().success());
    let text = info_op.logs();
    let line = text
        .lines()
        .find(|l| l.contains("issuing a console URL"))
        .unwrap_or_else(|| panic!("no issue line:\n{text}"));
    assert!(
        line.contains(" INFO ") && line.contains("session=db-1") && line.contains(&env.ns),
        "{line}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn only_the_leader_issues_and_a_standby_takes_over() {
    let env = Env::new("leader").await;
    let lease = format!("lease-{}", env.ns);
    let args = [
        "--leader-elect",
        "--lease-name",
        lease.as_str(),
        "--lease-duration",
        "3s",
    ];
    let mut first = env.operator(&args);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut second = env.operator(&args);
    tokio::time::sleep(Duration::from_secs(2)).await;

    env.apply_ready("db-1", json!({"isWindows": false})).await;
    let issuing = |op: &Operator| op.logs().matches("issuing a console URL").count();
    assert_eq!(
        (issuing(&first), issuing(&second)),
        (1, 0),
        "exactly one process issues"
    );
    let lease_field = |field: &str| {
        env.kubectl_ok(&[
            "-n",
            "ecs-vnc-system",
            "get",
            "lease",
            &lease,
            "-o",
            &format!("jsonpath={{.spec.{field}}}"),
        ])
    };
    assert!(!lease_field("holderIdentity").is_empty());

    // Both are ready, the standby too (readiness tied to leadership deadlocks rolling updates);
    // only the leader says it leads.
    for (op, leads) in [(&first, 1), (&second, 0)] {
        let addr = op.metrics_addr().await;
        let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        assert_eq!(ready.status().as_u16(), 200, "{}", op.logs());
        let metrics = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!("ecsvnc_leader {leads}")),
            "{metrics}"
        );
    }

    // A clean shutdown hands the Lease back before the process exits; the standby serves the
    // next refresh.
    assert!(first.terminate().success());
    assert!(
        first.logs().contains("Lease released"),
        "the Lease is released on shutdown, not left to lapse:\n{}",
        first.logs()
    );
    env.refresh_and_wait("db-1", "after-handover", WAIT).await;
    assert_eq!(issuing(&second), 1, "the standby took over");

    // A crashed leader (SIGKILL, no release) is replaced once its Lease lapses, not before.
    let mut third = env.operator(&args);
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.kill();
    let last_renewed = lease_field("renewTime");
    env.refresh_and_wait("db-1", "after-crash", WAIT).await;
    assert_eq!(issuing(&third), 1);
    let parse = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
    let taken_over = parse(&lease_field("acquireTime"));
    let gap = taken_over.duration_since(parse(&last_renewed));
    assert!(
        gap >= jiff::SignedDuration::from_secs(3),
        "the standby waited for the lease duration after the last renewal ({gap:?})"
    );
    assert!(third.terminate().success());
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_namespaced_rbac_is_enough_to_serve_one_namespace_with_leader_election() {
    let env = Env::new("rbacns").await;
    // deploy/namespaced/rbac.yaml for a ServiceAccount of its own (so the cluster-wide grants of
    // the shared one prove nothing here), in this test's namespace instead of ecs-vnc-sessions.
    let sa = "ecs-vnc-operator-nstest";
    let rbac = std::fs::read_to_string(root().join("deploy/namespaced/rbac.yaml"))
        .unwrap()
        .replace("ecs-vnc-operator", sa)
        .replace("ecs-vnc-sessions", &env.ns);
    let file = env.cluster().dir.join(format!("rbac-{}.yaml", env.ns));
    std::fs::write(&file, rbac).unwrap();
    env.kubectl_ok(&["-n", "ecs-vnc-system", "create", "serviceaccount", sa]);
    env.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let kubeconfig = env
        .cluster()
        .service_account_kubeconfig("ecs-vnc-system", sa);
    let lease = format!("lease-{}", env.ns);
    let mut op = env.operator_as(
        &kubeconfig,
        &["--leader-elect", "--lease-name", lease.as_str()],
    );
    let s = env.apply_ready("db-1", json!({})).await;
    assert_eq!(s.status.unwrap().is_windows, Some(false));
    env.refresh_and_wait("db-1", "namespaced", WAIT).await;
    let logs = op.logs();
    assert!(logs.contains("became the leader"), "{logs}");
    assert!(
        !logs.contains("forbidden"),
        "a call the Roles do not grant:\n{logs}"
    );
    let events = env.kubectl_ok(&["-n", &env.ns, "get", "events.events.k8s.io", "-o", "name"]);
    assert!(!events.trim().is_empty(), "Events were written");
    assert!(op.terminate().success());
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_deploy_service_account_may_do_exactly_what_the_operator_needs() {
    let env = Env::new("rbac").await;
    let sa = "system:serviceaccount:ecs-vnc-system:ecs-vnc-operator";
    let can = |verb: &str, resource: &str, ns: &str| {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        let sub = format!("--subresource={sub}");
        let out = env.kubectl(&["auth", "can-i", verb, resource, &sub, "-n", ns, "--as", sa]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    for (verb, resource) in [
        ("get", "vncsessions.ecsvnc.dev"),
        ("list", "vncsessions.ecsvnc.dev"),
        ("watch", "vncsessions.ecsvnc.dev"),
        ("patch", "vncsessions.ecsvnc.dev/status"),
        ("get", "secrets"),
        ("watch", "secrets"),
        ("create", "events.events.k8s.io"),
    ] {
        assert!(can(verb, resource, &env.ns), "needs {verb} {resource}");
    }
    for (verb, resource) in [
        ("create", "secrets"),
        ("update", "secrets"),
        ("delete", "secrets"),
        ("delete", "vncsessions.ecsvnc.dev"),
        ("create", "vncsessions.ecsvnc.dev"),
        ("patch", "vncsessions.ecsvnc.dev"),
        ("update", "vncsessions.ecsvnc.dev"),
        ("update", "vncsessions.ecsvnc.dev/status"),
        ("list", "pods"),
        ("create", "events"),
        ("get", "configmaps"),
    ] {
        assert!(!can(verb, resource, &env.ns), "must not {verb} {resource}");
    }
    assert!(can(
        "update",
        "leases.coordination.k8s.io",
        "ecs-vnc-system"
    ));
    assert!(
        !can("update", "leases.coordination.k8s.io", &env.ns),
        "Leases only in its own namespace"
    );
}
