//! The recent Events of one session, read through the `events.k8s.io/v1` API the operator
//! publishes with. API servers before field selectors on `regarding.*` reject the filter (400);
//! they get the same Events through `core/v1` with `involvedObject.*`.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::error::Op;
use crate::session::crd::VncSession;

/// One Event as the status view shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    /// When it was last seen.
    pub at: Option<Timestamp>,
    pub type_: String,
    pub reason: String,
    pub note: String,
    pub count: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Recent {
    /// Oldest first.
    Listed(Vec<EventLine>),
    /// Why there are none to show (no permission, say); the rest of the view still stands.
    Unavailable(String),
}

/// At most `limit` of the session's latest Events.
pub async fn recent(client: &kube::Client, session: &VncSession, limit: usize) -> Recent {
    let namespace = session.namespace().unwrap_or_default();
    let name = session.name_any();
    let fetched = match list_v1(client, &namespace, &name).await {
        Err(kube::Error::Api(s)) if s.code == 400 => list_core(client, &namespace, &name)
            .await
            .map_err(|e| (e, "events")),
        other => other.map_err(|e| (e, "events.events.k8s.io")),
    };
    match fetched {
        Ok(lines) => Recent::Listed(latest(lines, session, limit)),
        Err((e, resource)) => {
            let op = Op {
                verb: "list",
                resource,
                namespace: Some(&namespace),
                name: None,
            };
            Recent::Unavailable(op.error(e).to_string())
        }
    }
}

type Tagged = (Option<ObjectReference>, EventLine);

async fn list_v1(client: &kube::Client, ns: &str, name: &str) -> Result<Vec<Tagged>, kube::Error> {
    list(client, ns, &format!("regarding.name={name}"), from_v1).await
}

async fn list_core(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Vec<Tagged>, kube::Error> {
    list(
        client,
        ns,
        &format!("involvedObject.name={name}"),
        from_core,
    )
    .await
}

/// One list of Events of either API, filtered by `fields`, each read by `tag`.
async fn list<K>(
    client: &kube::Client,
    ns: &str,
    fields: &str,
    tag: fn(K) -> Tagged,
) -> Result<Vec<Tagged>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().fields(fields)).await?;
    Ok(list.items.into_iter().map(tag).collect())
}

fn from_v1(e: Event) -> Tagged {
    let series = e.series.as_ref();
    let seen = [
        series.map(|s| s.last_observed_time.0),
        e.event_time.as_ref().map(|t| t.0),
        e.deprecated_last_timestamp.as_ref().map(|t| t.0),
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ];
    let count = series.map(|s| s.count).or(e.deprecated_count);
    (e.regarding, line(seen, count, e.type_, e.reason, e.note))
}

fn from_core(e: CoreEvent) -> Tagged {
    let series = e.series.as_ref();
    let seen = [
        series.and_then(|s| s.last_observed_time.as_ref().map(|t| t.0)),
        e.last_timestamp.as_ref().map(|t| t.0),
        e.event_time.as_ref().map(|t| t.0),
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ];
    let count = series.and_then(|s| s.count).or(e.count);
    let line = line(seen, count, e.type_, e.reason, e.message);
    (Some(e.involved_object), line)
}

/// Reads an Event of either API the same way: `at` is the first of the times it carries, most
/// telling first (`seen`); an unsaid count is 1, absent text empty.
fn line(
    seen: [Option<Timestamp>; 4],
    count: Option<i32>,
    type_: Option<String>,
    reason: Option<String>,
    note: Option<String>,
) -> EventLine {
    EventLine {
        at: seen.into_iter().flatten().next(),
        type_: type_.unwrap_or_default(),
        reason: reason.unwrap_or_default(),
        note: note.unwrap_or_default(),
        count: count.unwrap_or(1),
    }
}

/// Keeps the Events about this very session (not another kind with the same name, nor an
/// earlier session of the same name), newest `limit`, oldest first.
fn latest(events: Vec<Tagged>, session: &VncSession, limit: usize) -> Vec<EventLine> {
    let name = session.name_any();
    let uid = session.uid();
    let mut lines: Vec<EventLine> = events
        .into_iter()
        .filter(|(about, _)| {
            about.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("VncSession")
                    && r.name.as_deref() == Some(name.as_str())
                    && (uid.is_none() || r.uid.is_none() || r.uid == uid)
            })
        })
        .map(|(_, line)| line)
        .collect();
    lines.sort_by_key(|l| l.at);
    let skip = lines.len().saturating_sub(limit);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::mock::{self, Seen, Step};
    use serde_json::{Value, json};

    fn session() -> VncSession {
        serde_json::from_value(mock::session_json("db-1", "1", Value::Null)).unwrap()
    }

    /// The latest ten Events of db-1 in team-a, from an API server that answers `steps`.
    async fn recent_through(steps: Vec<Step>) -> (Recent, Vec<Seen>) {
        let (target, mut handle) = mock::target("team-a");
        let session = session();
        tokio::join!(
            recent(&target.client, &session, 10),
            mock::serve(&mut handle, steps)
        )
    }

    fn v1_event(name: &str, kind: &str, uid: &str, reason: &str, at: &str) -> Value {
        json!({"metadata": {"name": format!("{name}.{reason}"), "namespace": "team-a"},
               "eventTime": at, "type": "Normal", "reason": reason, "note": format!("{reason} note"),
               "action": "Reconcile", "reportingController": "ecs-vnc-operator",
               "reportingInstance": "op-1",
               "regarding": {"kind": kind, "name": name, "namespace": "team-a", "uid": uid}})
    }

    fn v1_list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "EventList", "metadata": {}, "items": items})
    }

    #[tokio::test]
    async fn reads_events_k8s_io_filtered_by_the_regarding_name() {
        let items = vec![
            v1_event(
                "db-1",
                "VncSession",
                "uid-db-1",
                "RefreshRequested",
                "2026-11-26T08:00:02.000000Z",
            ),
            v1_event(
                "db-1",
                "VncSession",
                "uid-db-1",
                "UrlIssued",
                "2026-11-26T08:00:01.000000Z",
            ),
            v1_event(
                "db-1",
                "Pod",
                "uid-pod",
                "Pulled",
                "2026-11-26T08:00:03.000000Z",
            ),
            v1_event(
                "db-1",
                "VncSession",
                "uid-older",
                "Closed",
                "2026-11-26T07:00:00.000000Z",
            ),
        ];
        let (recent, seen) = recent_through(vec![
            Step::new("GET", "/apis/events.k8s.io/v1/namespaces/team-a/events")
                .json(200, v1_list(items)),
        ])
        .await;
        assert_eq!(
            seen[0].param("fieldSelector").as_deref(),
            Some("regarding.name=db-1")
        );
        let Recent::Listed(lines) = recent else {
            panic!("{recent:?}")
        };
        let reasons: Vec<&str> = lines.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(reasons, ["UrlIssued", "RefreshRequested"]);
        assert_eq!(lines[0].note, "UrlIssued note");
    }

    #[tokio::test]
    async fn an_older_server_is_asked_through_core_v1() {
        let rejected = json!({"kind": "Status", "status": "Failure", "reason": "BadRequest",
            "code": 400, "message": "field label not supported: regarding.name"});
        let core = json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
            {"metadata": {"name": "db-1.1", "namespace": "team-a"},
             "involvedObject": {"kind": "VncSession", "name": "db-1", "uid": "uid-db-1"},
             "reason": "Throttled", "message": "at most 30", "type": "Warning", "count": 3,
             "lastTimestamp": "2026-11-26T08:00:00Z"}]});
        let (recent, seen) = recent_through(vec![
            Step::new("GET", "/apis/events.k8s.io/v1/namespaces/team-a/events").json(400, rejected),
            Step::new("GET", "/api/v1/namespaces/team-a/events").json(200, core),
        ])
        .await;
        assert_eq!(
            seen[1].param("fieldSelector").as_deref(),
            Some("involvedObject.name=db-1")
        );
        assert_eq!(
            recent,
            Recent::Listed(vec![EventLine {
                at: Some("2026-11-26T08:00:00Z".parse().unwrap()),
                type_: "Warning".into(),
                reason: "Throttled".into(),
                note: "at most 30".into(),
                count: 3,
            }])
        );
    }

    #[tokio::test]
    async fn no_permission_for_events_is_said_not_fatal() {
        let (recent, _) = recent_through(vec![
            Step::new("GET", "/apis/events.k8s.io/v1/namespaces/team-a/events").json(
                403,
                json!({"kind": "Status", "code": 403, "reason": "Forbidden"}),
            ),
        ])
        .await;
        let Recent::Unavailable(why) = recent else {
            panic!("{recent:?}")
        };
        assert!(
            why.starts_with("you may not list events.events.k8s.io in namespace \"team-a\""),
            "{why}"
        );
    }

    #[test]
    fn only_the_latest_are_kept() {
        let line = |s: i64| EventLine {
            at: Some(Timestamp::from_second(s).unwrap()),
            type_: "Normal".into(),
            reason: format!("r{s}"),
            note: String::new(),
            count: 1,
        };
        let about = Some(ObjectReference {
            kind: Some("VncSession".into()),
            name: Some("db-1".into()),
            ..ObjectReference::default()
        });
        let events = (0..5).rev().map(|s| (about.clone(), line(s))).collect();
        let kept = latest(events, &session(), 2);
        assert_eq!(kept, vec![line(3), line(4)]);
    }
}
