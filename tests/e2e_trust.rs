//! The trust boundary end to end (issue: "who may open which console, with whose key"): a real
//! kube-apiserver, ecs-sim, and the operator binary running as the ServiceAccount of `deploy/`.
//! Run with `scripts/test.sh`.

mod support;

use std::time::Duration;

use ecs_vnc_operator::sim::SimConfig;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::ecs_sim::{self, VNC};
use support::env::Env;
use support::listeners::Tarpit;
use support::session_status::{assert_stalled, last_error};
use support::session_wait::WAIT;
use support::shared_cluster::OPERATOR_NS;
use support::waiting::until;

/// A listener standing for an attacker's endpoint: it counts every connection and never answers.
async fn attacker() -> Tarpit {
    Tarpit::start(Duration::from_secs(600)).await
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn an_attackers_endpoint_receives_nothing_with_a_secret_or_the_operators_key() {
    let env = Env::new("trap").await;
    let trap = attacker().await;
    let ns = env.ns.clone();
    let _op = env.operator_with_own_credentials(&["--operator-credentials-namespaces", &ns]);
    env.apply_ok(&env.session("with-secret", json!({"endpoint": trap.url})));
    env.apply_ok(&env.own_key_session("with-own-key", json!({"endpoint": trap.url})));
    for name in ["with-secret", "with-own-key"] {
        let s = env.wait_phase(name, "Failed", WAIT).await;
        let needles = ["spec.endpoint", "--allowed-endpoints"];
        assert_stalled(&s, "EndpointNotAllowed", &needles);
    }
    // A refresh does not change the answer either.
    env.refresh_and_wait("with-secret", "again", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(trap.accepted(), 0, "not one connection or byte");
    assert_eq!(env.sim.stats().calls.len(), 0, "nor any ECS call");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn an_allowed_endpoint_other_than_the_operators_own_is_used() {
    let env = Env::new("allowed").await;
    // A second ECS (say, a VPC endpoint) allowed by pattern, not the operator's --ecs-endpoint.
    let vpc = ecs_sim::start(SimConfig::demo()).await;
    let allowed = format!("https://*.aliyuncs.com,{}", vpc.endpoint());
    let _op = env.operator(&["--allowed-endpoints", &allowed]);
    env.apply_ready("vpc-1", json!({"endpoint": vpc.endpoint()}))
        .await;
    assert_eq!(vpc.stats().count(VNC, "Success"), 1);
    assert_eq!(env.sim.stats().count(VNC, "Success"), 0);
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_namespace_not_offered_the_operators_key_gets_credentials_not_found() {
    let env = Env::new("notoffered").await;
    let _op = env.operator_with_own_credentials(&["--operator-credentials-namespaces", "ops"]);
    env.apply_ok(&env.own_key_session("own-key", json!({})));
    let s = env.wait_phase("own-key", "Failed", WAIT).await;
    let (code, message) = last_error(&s);
    assert_eq!(code, "CredentialsNotFound");
    assert!(
        message.contains("--operator-credentials-namespaces") && message.contains(&env.ns),
        "{message}"
    );
    let ready = s
        .status
        .as_ref()
        .unwrap()
        .ready_condition()
        .unwrap()
        .clone();
    assert_eq!(ready.reason, "CredentialsNotFound");
    assert_eq!(env.sim.stats().calls.len(), 0, "no ECS call");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_credentials_ref_that_is_a_path_is_refused_by_kubectl_apply() {
    let env = Env::new("pathref").await;
    let bad = env.session(
        "bad-ref",
        json!({"credentialsRef": {"name": "../kube-system/x"}}),
    );
    let out = env.apply(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.credentialsRef.name"), "{stderr}");
    let bad = env.session(
        "bad-ep",
        json!({"endpoint": "https://ecs.aliyuncs.com@evil.example"}),
    );
    let stderr = String::from_utf8_lossy(&env.apply(&bad).stderr).into_owned();
    assert!(stderr.contains("spec.endpoint"), "{stderr}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_backslash_or_percent_endpoint_is_refused_by_kubectl_apply_and_its_host_gets_nothing() {
    let env = Env::new("backslash").await;
    let tarpit = attacker().await;
    let trap = &tarpit.url;
    // Even with the listener allowed: the form of the value is what is refused.
    let _op = env.operator(&["--allowed-endpoints", trap]);
    for (name, endpoint) in [
        // A WHATWG URL parser reads this as {trap}/2016-08-15/proxy/svc/fn/.
        ("backslash", format!(r"{trap}\2016-08-15\proxy\svc\fn\")),
        (
            "percent",
            format!("{trap}%2F2016-08-15%2Fproxy%2Fsvc%2Ffn%2F"),
        ),
        ("del", format!("{trap}\u{7f}")),
    ] {
        let out = env.apply(&env.session(name, json!({ "endpoint": endpoint })));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(stderr.contains("spec.endpoint"), "{name}: {stderr}");
        assert!(
            env.api().get_opt(name).await.unwrap().is_none(),
            "{name} was stored"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tarpit.accepted(), 0, "not one connection or byte");
    // The same host, plainly written, is created and contacted: the refusals above were the
    // value's, not the allow-list's (the listener never answers; it only counts).
    env.apply_ok(&env.session("plain", json!({ "endpoint": trap })));
    let failure = || "the allowed listener was never contacted".to_owned();
    let contacted = || std::future::ready(tarpit.accepted() > 0);
    until(WAIT, Duration::from_millis(100), failure, contacted).await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_region_outside_the_sdks_table_fails_with_invalid_region_id_and_nothing_is_sent() {
    let env = Env::new("region").await;
    let _op = env.operator(&["--extra-regions", "cn-nanjing"]);
    // ecs.oss-accelerate.aliyuncs.com is an OSS bucket's host, not ECS's.
    env.apply_ok(&env.session("oss", json!({"regionId": "oss-accelerate"})));
    let s = env.wait_phase("oss", "Failed", WAIT).await;
    assert_stalled(
        &s,
        "InvalidRegionId",
        &["oss-accelerate", "--extra-regions"],
    );
    assert_eq!(env.sim.stats().calls.len(), 0, "no ECS call");
    // A region newer than the table, named by --extra-regions, is sent (the simulator knows no
    // instance there: ECS's own answer, after the call).
    env.apply_ok(&env.session("new", json!({"regionId": "cn-nanjing"})));
    let s = env.wait_phase("new", "Failed", WAIT).await;
    assert_ne!(last_error(&s).0, "InvalidRegionId");
    assert!(!env.sim.stats().calls.is_empty(), "sent to ECS");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_long_cjk_reason_reaches_its_event() {
    let env = Env::new("cjk").await;
    let _op = env.operator(&[]);
    // 1,000 characters, 3,000 bytes: within the CRD's 1,024 characters, beyond the Event's 1 KiB.
    let reason = "磁盘已满需要紧急登录".repeat(100);
    env.apply_ready("cjk-1", json!({"reason": reason})).await;
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        let issued = list.items.iter().find(|e| {
            e.reason.as_deref() == Some("UrlIssued")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("cjk-1")
        });
        if let Some(e) = issued {
            let note = e.note.as_deref().unwrap_or_default();
            assert!(note.len() <= 1024, "{} bytes", note.len());
            assert!(note.contains("reason: 磁盘已满需要紧急登录"), "{note}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no UrlIssued Event: {:?}",
            list.items.iter().map(|e| &e.reason).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_operators_service_account_may_write_status_but_not_a_grant() {
    let env = Env::new("rbac").await;
    let sa = format!("system:serviceaccount:{OPERATOR_NS}:ecs-vnc-operator");
    let can = |verb: &str, subresource: &str| {
        let out = env.kubectl(&[
            "auth",
            "can-i",
            verb,
            "vncsessions.ecsvnc.dev",
            &format!("--subresource={subresource}"),
            "-n",
            &env.ns,
            "--as",
            &sa,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(can("patch", ""), "no");
    assert_eq!(can("update", ""), "no");
    assert_eq!(can("patch", "status"), "yes");
    // And a real attempt is refused by the API server.
    env.apply_ok(&env.session("grant-1", json!({})));
    let out = env.kubectl(&[
        "-n",
        &env.ns,
        "--as",
        &sa,
        "patch",
        "vncsession",
        "grant-1",
        "--type=merge",
        "-p",
        r#"{"spec":{"instanceId":"i-someoneelse"}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn keyless_sessions_without_their_grant_stop_the_operator_with_the_fix() {
    let env = Env::new("nokeyless").await;
    // deploy/rbac.yaml alone: no ServiceAccount grant (that is deploy/components/keyless).
    let mut op = env.operator(&[
        "--keyless-sessions",
        "--oidc-provider-arn",
        "acs:ram::1234567890123456:oidc-provider/ack-rrsa-e2e",
    ]);
    let status = op.wait(Duration::from_secs(30));
    assert!(!status.success(), "{status:?}");
    let logs = op.logs();
    assert!(
        logs.contains("may not list ServiceAccounts") && logs.contains("deploy/components/keyless"),
        "{logs}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_provider_alone_does_not_turn_on_keyless_sessions() {
    let env = Env::new("noswitch").await;
    // What the operator's own RRSA sets; without --keyless-sessions it needs no ServiceAccount
    // grant (deploy/rbac.yaml alone) and serves no serviceAccountRef.
    let _op = env.operator(&[
        "--oidc-provider-arn",
        "acs:ram::1234567890123456:oidc-provider/ack-rrsa-e2e",
    ]);
    env.apply_ok(&env.keyless_session("keyless-1", "opener", json!({})));
    let s = env.wait_phase("keyless-1", "Failed", WAIT).await;
    let (code, message) = last_error(&s);
    assert_eq!(code, "CredentialsNotFound");
    assert!(message.contains("--keyless-sessions"), "{message}");
    assert_eq!(env.sim.stats().calls.len(), 0, "no ECS or STS call");
}
