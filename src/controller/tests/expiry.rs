//! What is decided on the cached session alone: expiry, a closed grant, a refresh.

use std::time::Duration;

use kube::runtime::controller::Action;

use super::fixture::*;

#[tokio::test]
async fn an_expired_window_is_recorded_without_any_ecs_call() {
    let mut f = fixture().await;
    let s = issued("db-1", 20);
    let (action, seen) = run(&mut f, &s, decided_steps("db-1")).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["phase"], "UrlExpired");
    assert_eq!(st["refreshable"], true);
    assert!(
        st.get("consoleUrl").is_none() && st.get("vncUrl").is_none(),
        "URLs leave with Ready"
    );
    assert_eq!(seen[1].1["reason"], "UrlExpired");
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    assert_requeued_within(&action, 290.0, 295.1, "next look at sessionExpiresAt");
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

#[tokio::test]
async fn a_new_refresh_value_issues_one_url_and_records_it() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    let (_, seen) = run(&mut f, &s, reissue_steps("db-1")).await;
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
    let (action, seen) = run(&mut f, &s, decided_steps("db-1")).await;
    assert_eq!(seen[0].1["status"]["phase"], "Closed");
    assert_eq!(seen[0].1["status"]["refreshable"], false);
    assert!(seen[0].1["status"].get("consoleUrl").is_none());
    assert_eq!(seen[1].1["reason"], "Closed");
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
}
