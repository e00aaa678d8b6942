//! Every failure is counted in `ecsvnc_issue_failures_total`, ECS called or not, by the stage it
//! failed at; a URL is no failure.

use super::fixture::*;
use crate::session::VncSession;

/// The failure series that are not 0, sorted (a family's series come in no fixed order).
fn failures(f: &Fixture) -> Vec<String> {
    let mut lines: Vec<String> = f
        .ctx
        .metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("ecsvnc_issue_failures_total{") && !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The failure series after one reconcile of `s` on a fresh fixture.
async fn failures_after(s: &VncSession, steps: Vec<Expect>) -> Vec<String> {
    let mut f = fixture().await;
    run(&mut f, s, steps).await;
    failures(&f)
}

#[tokio::test]
async fn a_refused_endpoint_is_counted_at_the_spec_stage() {
    let (trap_url, _) = trap().await;
    let mut s = session("evil-1");
    s.spec.endpoint = Some(trap_url);
    assert_eq!(
        failures_after(&s, no_secret_steps("evil-1")).await,
        [r#"ecsvnc_issue_failures_total{stage="spec",code="EndpointNotAllowed"} 1"#]
    );
}

#[tokio::test]
async fn a_missing_secret_is_counted_at_the_credentials_stage() {
    assert_eq!(
        failures_after(&session("db-1"), missing_secret_steps("db-1")).await,
        [r#"ecsvnc_issue_failures_total{stage="credentials",code="CredentialsNotFound"} 1"#]
    );
}

#[tokio::test]
async fn an_invalid_spec_and_a_refused_refresh_value_are_counted_without_an_issue() {
    let mut f = fixture().await;
    run(
        &mut f,
        &session_naming_a_secret_path("path-1"),
        decided_steps("path-1"),
    )
    .await;
    let mut s = expired_and_asked_to_refresh("db-1");
    s.metadata.annotations = Some([("ecsvnc.dev/refresh".to_owned(), "r".repeat(2_000))].into());
    run(&mut f, &s, decided_steps("db-1")).await;
    assert_eq!(
        failures(&f),
        [
            r#"ecsvnc_issue_failures_total{stage="spec",code="InvalidSpec"} 1"#,
            r#"ecsvnc_issue_failures_total{stage="spec",code="RefreshIgnored"} 1"#,
        ]
    );
    assert_eq!(f.sim.stats().calls.len(), 0, "no ECS call");
}

#[tokio::test]
async fn an_ecs_refusal_is_counted_at_the_ecs_stage_and_a_url_is_not_counted() {
    let mut f = fixture().await;
    issue_against(&mut f, &session("web-1")).await;
    assert_eq!(failures(&f), Vec::<String>::new(), "a URL is no failure");
    let mut s = session("db-1");
    s.spec.instance_id = "i-doesnotexist".into();
    s.spec.is_windows = Some(false);
    issue_against(&mut f, &s).await;
    assert_eq!(
        failures(&f),
        [r#"ecsvnc_issue_failures_total{stage="ecs",code="InvalidInstanceId.NotFound"} 1"#]
    );
}

#[tokio::test]
async fn an_sts_refusal_is_counted_as_an_exchange_and_a_failure_at_the_credentials_stage() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::core::PartialObjectMeta;
    use kube::runtime::watcher::Event;
    use serde_json::json;
    // The sim knows no OIDC provider: STS refuses every exchange (AuthenticationFail.NoPermission).
    let mut f = fixture_with(|s| {
        s.keyless_sessions = true;
        s.oidc_provider_arn = Some("acs:ram::1234567890123456:oidc-provider/ack-rrsa".into());
    })
    .await;
    let annotations = [(
        "ecsvnc.dev/role-arn".to_owned(),
        "acs:ram::1234567890123456:role/opener".to_owned(),
    )];
    let account: PartialObjectMeta<ServiceAccount> = PartialObjectMeta {
        types: None,
        metadata: kube::api::ObjectMeta {
            name: Some("opener".into()),
            namespace: Some(NS.into()),
            resource_version: Some("7".into()),
            annotations: Some(annotations.into()),
            ..kube::api::ObjectMeta::default()
        },
        _phantom: std::marker::PhantomData,
    };
    f.ctx.service_accounts.observe(&Event::Apply(account));
    let mut s = session("keyless-1");
    s.spec.credentials_ref = None;
    s.spec.service_account_ref = Some(crate::session::crd::LocalObjectRef {
        name: "opener".into(),
    });
    let token = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["sts.aliyuncs.com"]},
        "status": {"token": "e30.e30.c2ln", "expirationTimestamp": "2099-01-01T00:00:00Z"},
    });
    let steps = vec![
        pending_patch("keyless-1"),
        Expect {
            method: "POST",
            path: format!("/api/v1/namespaces/{NS}/serviceaccounts/opener/token"),
            reply: (201, token),
        },
        status_patch("keyless-1"),
        event(),
    ];
    let (_, seen) = run(&mut f, &s, steps).await;
    let code = seen[2].1["status"]["lastError"]["code"].as_str().unwrap();
    assert!(code.starts_with("AuthenticationFail"), "{}", seen[2].1);
    assert_eq!(
        failures(&f),
        [format!(
            r#"ecsvnc_issue_failures_total{{stage="credentials",code="{code}"}} 1"#
        )]
    );
    assert_metric_line(&f, r#"ecsvnc_sts_exchanges_total{outcome="refused"} 1"#);
    assert_metric_line(&f, r#"ecsvnc_sts_exchanges_total{outcome="ok"} 0"#);
    assert_eq!(
        f.sim.stats().total("DescribeInstanceVncUrl"),
        0,
        "no ECS call"
    );
}
