//! Reconcile scenarios of the tenant-isolation fixes: what one namespace's sessions can no longer
//! do to another's (slots, the per-instance limit), outcomes kept across a failed status write,
//! and no new ECS call once the operator is stopping.

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::fixture::*;
use crate::controller::reconcile;

fn api_error(code: u16) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "InternalError", "code": code, "message": "etcd is down"}),
    )
}

#[tokio::test]
async fn an_endpoint_that_cannot_be_reached_gives_the_instances_slot_back() {
    // A closed port on loopback: the connection fails before a byte is sent.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut f = fixture_with(|s| {
        s.reconnect_limit_per_minute = 1;
        s.allowed_endpoints = crate::aliyun::AllowedEndpoints::parse(&format!(
            "{closed},{}",
            s.ecs_endpoint.clone().unwrap()
        ))
        .unwrap();
    })
    .await;
    let mut s = session("attacker-1");
    s.spec.endpoint = Some(closed);
    s.spec.is_windows = Some(false);
    let (_, seen) = run(&mut f, &s, first_issue_steps("attacker-1", good_secret())).await;
    let st = &seen[2].1["status"];
    assert_eq!(st["lastError"]["code"], "ConnectionFailed");
    assert_eq!(st["refreshable"], true, "retried later");
    // The one slot a minute is still there for whoever may really open the instance.
    assert_eq!(
        f.ctx
            .limiter
            .try_acquire("cn-hangzhou", LINUX, Timestamp::now()),
        Ok(())
    );
}

#[tokio::test]
async fn a_namespace_at_its_share_of_calls_waits_without_calling_anyone() {
    let mut f = fixture_with(|s| s.max_concurrent_reconciles = 8).await;
    assert_eq!(f.ctx.namespace_slots.per_namespace(), 1);
    let held = f.ctx.namespace_slots.try_take(NS).unwrap();
    let s = session("db-1");
    let (action, _) = run(&mut f, &s, vec![]).await;
    let wait = requeue_secs(&action);
    assert!((0.5..=1.0).contains(&wait), "looks again soon: {wait}");
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    // Another namespace is not held up by it.
    assert!(f.ctx.namespace_slots.try_take("team-b").is_some());
    drop(held);
    let (_, seen) = run(&mut f, &s, first_issue_steps("db-1", good_secret())).await;
    assert_eq!(seen[2].1["status"]["phase"], "Ready");
}

#[tokio::test]
async fn an_outcome_whose_write_failed_is_written_later_without_a_second_url() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    let failing = status_write("db-1", api_error(500));
    let ctx = f.ctx.clone();
    let (result, _) = tokio::join!(
        reconcile(Arc::new(s.clone()), ctx),
        serve(&mut f.api, vec![secret_read(), failing])
    );
    assert!(result.is_err(), "the shell error is reported for backoff");
    assert_eq!(f.ctx.unwritten.len(), 1, "the outcome is kept");
    // The next reconcile writes it: no Secret read, no ECS call.
    let (_, seen) = run(&mut f, &s, decided_steps("db-1")).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["phase"], "Ready");
    assert_eq!(st["observedRefresh"], "b");
    assert!(st["vncUrl"].as_str().is_some_and(|u| !u.is_empty()));
    assert_eq!(f.ctx.unwritten.len(), 0);
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 1);
}

#[tokio::test]
async fn once_stopping_no_new_ecs_call_starts_and_nothing_is_written() {
    let mut f = fixture().await;
    f.ctx.stopping.set();
    let s = expired_and_asked_to_refresh("db-1");
    let (action, _) = run(&mut f, &s, vec![secret_read()]).await;
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    assert_eq!(
        f.ctx
            .limiter
            .free_at_seeded("cn-hangzhou", LINUX, Timestamp::now(), Vec::new),
        None,
        "no slot spent"
    );
}

#[tokio::test]
async fn an_oversized_refresh_value_is_refused_once_and_never_stored() {
    let mut f = fixture().await;
    let mut s = expired_and_asked_to_refresh("db-1");
    let huge = "r".repeat(200_000);
    s.metadata.annotations = Some([("ecsvnc.dev/refresh".to_owned(), huge.clone())].into());
    let (_, seen) = run(&mut f, &s, decided_steps("db-1")).await;
    let st = &seen[0].1["status"];
    assert_eq!(st["phase"], "Expired", "nothing else changes");
    let recorded = st["observedRefresh"].as_str().unwrap();
    assert!(recorded.len() < 64, "{} bytes stored", recorded.len());
    assert_eq!(seen[1].1["reason"], "RefreshIgnored");
    assert_eq!(seen[1].1["type"], "Warning");
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 0);
    // Answered: the same value again is left alone.
    let answered = with_status(s, |st| st.observed_refresh = Some(recorded.to_owned()));
    let (action, _) = run(&mut f, &answered, vec![]).await;
    assert_eq!(action, Action::await_change());
}
