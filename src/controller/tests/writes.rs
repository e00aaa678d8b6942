//! Status writes among other writers: stale cached copies, conflicts, sessions changed or deleted
//! during the ECS call, and the bookkeeping that goes with a deleted session.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::json;

use super::fixture::*;
use crate::session::VncSession;

/// What one reconcile of `s` on a fresh fixture decides, the API server answering `steps`.
async fn action_after(s: &VncSession, steps: Vec<Expect>) -> Action {
    run(&mut fixture().await, s, steps).await.0
}

#[tokio::test]
async fn a_cached_copy_older_than_our_own_write_waits_for_the_watch() {
    let mut f = fixture().await;
    let s = expired_and_asked_to_refresh("db-1");
    // The refresh is served; the watch cache still holds the version that was written over.
    run(&mut f, &s, reissue_steps("db-1")).await;
    // The same stale copy again: no call at all, neither to the API server nor to ECS.
    let (action, seen) = run(&mut f, &s, vec![]).await;
    assert!(seen.is_empty());
    assert_eq!(action, Action::await_change());
    assert_eq!(f.sim.stats().total("DescribeInstanceVncUrl"), 1, "one URL");
}

#[tokio::test]
async fn a_session_deleted_during_the_ecs_call_ends_quietly() {
    let steps = vec![
        pending_patch("db-1"),
        secret_read(),
        status_write("db-1", not_found()),
    ];
    assert_eq!(
        action_after(&session("db-1"), steps).await,
        Action::await_change(),
        "no Event for a gone object, no retry"
    );
}

#[tokio::test]
async fn a_conflicting_expiry_write_waits_for_the_newer_version() {
    let action = action_after(&issued("db-1", 20), vec![status_conflict("db-1")]).await;
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
            session_get("db-1", (200, labelled)),
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
    let steps = vec![
        secret_read(),
        status_conflict("db-1"),
        session_get("db-1", not_found()),
    ];
    let s = expired_and_asked_to_refresh("db-1");
    assert_eq!(action_after(&s, steps).await, Action::await_change());
}

#[tokio::test]
async fn a_deleted_sessions_bookkeeping_goes_with_it() {
    let f = fixture().await;
    let s = session("db-1");
    f.ctx
        .record_failure(&crate::controller::context::session_key(&s));
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
