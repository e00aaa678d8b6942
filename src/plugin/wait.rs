//! Waiting for the operator's answer: a watch on the one object, from the resourceVersion the
//! refresh patch returned, until the status shows the request was served (or that it never will
//! be: see [`settled`]). No polling; the caller bounds the wait with its `--timeout`.

use std::time::Duration;

use futures::{StreamExt, pin_mut};
use kube::api::{GetParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};

use super::error::{Error, Op};
use super::outcome::{served, settled};
use crate::session::crd::VncSession;

/// A watch the server ends at once (a proxy that does not stream, say) is reopened after this
/// pause, so the loop cannot spin.
const REOPEN_PAUSE: Duration = Duration::from_millis(200);

/// Returns the session as it was when the operator served `ours`, or settled in a state that
/// serves no request.
pub async fn until_answered(
    api: &Api<VncSession>,
    namespace: &str,
    name: &str,
    ours: &str,
    start: VncSession,
) -> Result<VncSession, Error> {
    if answered(&start, ours) {
        return Ok(start);
    }
    let op = Op::sessions("watch", namespace, Some(name));
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut version = start.resource_version().unwrap_or_default();
    loop {
        let opened = tokio::time::Instant::now();
        let stream = api
            .watch(&params, &version)
            .await
            .map_err(|e| op.error(e))?;
        pin_mut!(stream);
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(event) => event,
                // The connection broke mid-stream: reopen from the last version seen.
                Err(kube::Error::Api(status)) => return Err(op.status_error(&status)),
                Err(e @ kube::Error::SerdeError(_)) => return Err(op.error(e)),
                Err(_) => break,
            };
            match event {
                WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                    if answered(&obj, ours) {
                        return Ok(obj);
                    }
                    version = obj.resource_version().unwrap_or(version);
                }
                WatchEvent::Bookmark(bookmark) => version = bookmark.metadata.resource_version,
                WatchEvent::Deleted(_) => {
                    return Err(Error::Deleted {
                        name: name.to_owned(),
                        namespace: namespace.to_owned(),
                    });
                }
                // Our version is too old to resume from: read the object as it is now.
                WatchEvent::Error(status) if status.code == 410 => {
                    let now = api
                        .get_with(name, &GetParams::default())
                        .await
                        .map_err(|e| Op::sessions("get", namespace, Some(name)).error(e))?;
                    if answered(&now, ours) {
                        return Ok(now);
                    }
                    version = now.resource_version().unwrap_or_default();
                    break;
                }
                WatchEvent::Error(status) => return Err(op.status_error(&status)),
            }
        }
        if opened.elapsed() < REOPEN_PAUSE {
            tokio::time::sleep(REOPEN_PAUSE).await;
        }
    }
}

fn answered(session: &VncSession, ours: &str) -> bool {
    served(session, ours) || settled(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::mock::{self, Step};
    use crate::session::crd::REFRESH_ANNOTATION;
    use serde_json::{Value, json};

    /// db-1 at version `rv` with `status`, its refresh annotation set to "mine".
    fn asked(rv: &str, status: Value) -> Value {
        let mut obj = mock::session_json("db-1", rv, status);
        obj["metadata"]["annotations"] = json!({REFRESH_ANNOTATION: "mine"});
        obj
    }

    fn start(rv: &str) -> VncSession {
        serde_json::from_value(asked(rv, Value::Null)).unwrap()
    }

    /// The version of the object the wait ended on.
    fn answered_version(result: Result<VncSession, Error>) -> Option<String> {
        result.ok().unwrap().resource_version()
    }

    /// Waits for "mine" from version 10 against an API server that answers `steps`.
    async fn wait_through(steps: Vec<Step>) -> (Result<VncSession, Error>, Vec<mock::Seen>) {
        let (target, mut handle) = mock::target("team-a");
        let api: Api<VncSession> = Api::namespaced(target.client, "team-a");
        tokio::join!(
            until_answered(&api, "team-a", "db-1", "mine", start("10")),
            mock::serve(&mut handle, steps)
        )
    }

    fn modified(obj: Value) -> Value {
        json!({"type": "MODIFIED", "object": obj})
    }

    #[tokio::test]
    async fn watches_the_one_object_from_the_patch_version_until_served() {
        let not_yet = asked("11", json!({"observedRefresh": "earlier"}));
        let done = asked("12", json!({"observedRefresh": "mine", "phase": "Ready"}));
        let (result, seen) = wait_through(vec![
            Step::new("GET", &mock::sessions_path("team-a"))
                .events(vec![modified(not_yet), modified(done)]),
        ])
        .await;
        assert_eq!(answered_version(result).as_deref(), Some("12"));
        assert_eq!(seen[0].param("watch").as_deref(), Some("true"));
        assert_eq!(seen[0].param("resourceVersion").as_deref(), Some("10"));
        assert_eq!(
            seen[0].param("fieldSelector").as_deref(),
            Some("metadata.name=db-1")
        );
    }

    #[tokio::test]
    async fn a_closed_watch_is_reopened_from_the_last_version_seen() {
        let bookmark = json!({"type": "BOOKMARK", "object": {
            "apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
            "metadata": {"resourceVersion": "15"}}});
        let done = asked("16", json!({"observedRefresh": "mine"}));
        let (result, seen) = wait_through(vec![
            Step::new("GET", &mock::sessions_path("team-a")).events(vec![bookmark]),
            Step::new("GET", &mock::sessions_path("team-a")).events(vec![modified(done)]),
        ])
        .await;
        assert!(result.is_ok());
        assert_eq!(seen[1].param("resourceVersion").as_deref(), Some("15"));
    }

    #[tokio::test]
    async fn a_gone_version_reads_the_object_and_goes_on_from_there() {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}});
        let current = asked("40", json!({"observedRefresh": "mine"}));
        let (result, _) = wait_through(vec![
            Step::new("GET", &mock::sessions_path("team-a")).events(vec![gone]),
            Step::new("GET", &mock::session_path("team-a", "db-1")).json(200, current),
        ])
        .await;
        assert_eq!(answered_version(result).as_deref(), Some("40"));
    }

    #[tokio::test]
    async fn a_grant_that_closes_while_waiting_is_the_answer() {
        // The operator answers no refresh once the ttl has passed; it only writes Closed.
        let closed = asked(
            "13",
            json!({"observedRefresh": "earlier", "observedGeneration": 1, "phase": "Closed"}),
        );
        let (result, _) = wait_through(vec![
            Step::new("GET", &mock::sessions_path("team-a")).events(vec![modified(closed)]),
        ])
        .await;
        assert_eq!(answered_version(result).as_deref(), Some("13"));
    }

    #[tokio::test]
    async fn deletion_while_waiting_ends_the_wait() {
        let obj = mock::session_json("db-1", "11", Value::Null);
        let (result, _) = wait_through(vec![
            Step::new("GET", &mock::sessions_path("team-a"))
                .events(vec![json!({"type": "DELETED", "object": obj})]),
        ])
        .await;
        assert!(matches!(result, Err(Error::Deleted { .. })));
    }

    #[tokio::test]
    async fn no_right_to_watch_is_named() {
        let (result, _) =
            wait_through(vec![Step::new("GET", &mock::sessions_path("team-a")).json(
                403,
                json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}),
            )])
            .await;
        assert!(
            result
                .err()
                .unwrap()
                .to_string()
                .starts_with("you may not watch vncsessions.ecsvnc.dev in namespace \"team-a\"")
        );
    }
}
