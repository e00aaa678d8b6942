//! First issues and what ECS answers them: the calls of a first issue, terminal and retryable
//! errors, throttling, and the per-instance limit.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::fixture::*;
use crate::sim::{Fault, FaultKind};

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
    assert_requeued_within(&action, 10.0, 15.1, "next look when the URL expires");
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
        let message = assert_failed_for_good(st, code);
        assert!(st.get("retryAt").is_none(), "{code}");
        assert!(!message.contains("RequestId"));
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
    f.sim.inject(
        Fault::next(FaultKind::InternalError)
            .for_action("DescribeInstanceVncUrl")
            .times(10),
    );
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
    f.sim.inject(Fault::next(FaultKind::Throttling).times(10));
    let mut s = session("db-1");
    s.spec.is_windows = Some(false);
    let seen = issue_against(&mut f, &s).await;
    assert_eq!(seen[2].1["status"]["conditions"][0]["reason"], "Throttled");
    assert_eq!(seen[3].1["reason"], "Throttled");
    assert_metric_line(&f, "ecsvnc_throttled_issues_total 1");
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
    assert_metric_line(&f, "ecsvnc_throttled_issues_total 1");
    assert_requeued_within(
        &action,
        55.0,
        61.1,
        "requeued when the slot frees (rounded up to a whole second)",
    );
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
    let (_, seen) = run(&mut f, &s, reissue_steps("db-1")).await;
    assert_eq!(seen[1].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn an_invalid_spec_from_an_old_schema_fails_naming_the_field() {
    let mut f = fixture().await;
    let mut s = session("db-1");
    s.spec.instance_id = "not-an-instance".into();
    let (_, seen) = run(&mut f, &s, decided_steps("db-1")).await;
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
