//! Where a session's credentials come from: its Secret (read once while unchanged), the
//! operator's own where offered, and what is refused before any call.

use std::sync::Arc;

use kube::runtime::controller::Action;
use serde_json::json;

use super::fixture::*;
use crate::aliyun::OperatorCredentials;
use crate::controller::OperatorCredentialsScope;
use crate::session::VncSession;

#[tokio::test]
async fn a_missing_secret_fails_with_credentials_not_found() {
    let mut f = fixture().await;
    let s = session("db-1");
    let (action, seen) = run(&mut f, &s, missing_secret_steps("db-1")).await;
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
    // The only Secret read is in the session's own namespace.
    let (_, seen) = run(&mut f, &s, first_issue_steps("db-1", good_secret())).await;
    assert_eq!(seen[2].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn without_a_ref_or_operator_credentials_the_condition_says_so() {
    let mut f = fixture_with(|s| {
        s.operator_credentials_scope = OperatorCredentialsScope::Everywhere;
    })
    .await;
    let s = session_without_ref("db-1");
    let (_, seen) = run(&mut f, &s, no_secret_steps("db-1")).await;
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
        s.operator_credentials_scope = OperatorCredentialsScope::parse(NS).unwrap();
    })
    .await;
    let s = session_without_ref("db-1");
    let (_, seen) = run(&mut f, &s, no_secret_steps("db-1")).await;
    assert_eq!(seen[1].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn a_namespace_not_offered_operator_credentials_makes_no_ecs_call() {
    let mut f = fixture_with(|s| {
        s.credentials = Some(Arc::new(OperatorCredentials::access_key(sim_credentials())));
        s.operator_credentials_scope = OperatorCredentialsScope::parse("ops,break-glass").unwrap();
    })
    .await;
    let s = session_without_ref("own-1");
    let (_, seen) = run(&mut f, &s, no_secret_steps("own-1")).await;
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
    let s = session_naming_a_secret_path("path-1");
    // A status write and its Event; no read of the session, no Secret, no ECS call.
    let (_, seen) = run(&mut f, &s, decided_steps("path-1")).await;
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
    run(&mut f, &s, reissue_steps("db-1")).await;
    // Next refresh of another session using it: the status patch and the Event, nothing else.
    let mut s = expired_and_asked_to_refresh("db-2");
    s.metadata.resource_version = Some("20".into());
    let (_, seen) = run(&mut f, &s, decided_steps("db-2")).await;
    assert_eq!(seen[0].1["status"]["phase"], "Ready");
    // The Secret changes: read again.
    f.ctx.secrets.observe(&Event::Apply(secret_meta("78")));
    let mut s = expired_and_asked_to_refresh("db-3");
    s.metadata.resource_version = Some("30".into());
    run(&mut f, &s, reissue_steps("db-3")).await;
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 3);
}
