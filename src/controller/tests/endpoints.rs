//! Where a request may go: the allow-list, regions outside the SDK's table, and endpoints a URL
//! parser would read differently; refused ones get nothing, not even a Secret read.

use std::sync::Arc;
use std::time::Duration;

use super::fixture::*;
use crate::aliyun::{Credentials, OperatorCredentials};
use crate::controller::OperatorCredentialsScope;

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
            s.operator_credentials_scope = OperatorCredentialsScope::Everywhere;
        })
        .await;
        let mut s = session("evil-1");
        s.spec.endpoint = Some(trap_url.clone());
        if use_operator_credentials {
            s.spec.credentials_ref = None;
        }
        let (_, seen) = run(&mut f, &s, no_secret_steps("evil-1")).await;
        let st = &seen[1].1["status"];
        let message = assert_failed_for_good(st, "EndpointNotAllowed");
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
async fn a_region_outside_the_sdks_table_fails_with_invalid_region_id_and_nothing_is_sent() {
    // ecs.oss-accelerate.aliyuncs.com is an OSS bucket's host, not ECS.
    let mut f = fixture().await;
    let mut s = session("oss-1");
    s.spec.region_id = "oss-accelerate".into();
    let (_, seen) = run(&mut f, &s, no_secret_steps("oss-1")).await;
    let message = assert_failed_for_good(&seen[1].1["status"], "InvalidRegionId");
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
        let (_, seen) = run(&mut f, &s, decided_steps("fc-1")).await;
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
