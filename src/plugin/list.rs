//! `kubectl vnc list [-A]`: the sessions, with what a person under pressure asks first: is it
//! ready, for how long, and if not, why.

use std::io::Write;

use jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;

use super::connect::Target;
use super::error::{Error, Op};
use super::format::{age, left_cell};
use super::table;
use crate::session::crd::{Phase, VncSession};

/// Lists one namespace's sessions, or all namespaces' when `namespace` is `None`.
pub async fn fetch(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<VncSession>, Error> {
    let api: Api<VncSession> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let op = Op {
        verb: "list",
        resource: super::RESOURCE,
        namespace,
        name: None,
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| op.error(e))?;
    Ok(list.items)
}

/// The table; with `all_namespaces`, a NAMESPACE column comes first.
pub fn render(sessions: &[VncSession], all_namespaces: bool, now: Timestamp) -> String {
    let mut header = vec![
        "NAME",
        "INSTANCE",
        "PHASE",
        "URL EXPIRES IN",
        "REASON",
        "AGE",
    ];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut sorted: Vec<&VncSession> = sessions.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let rows: Vec<Vec<String>> = sorted
        .into_iter()
        .map(|s| {
            let mut row = row(s, now);
            if all_namespaces {
                row.insert(0, s.metadata.namespace.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    table::render(&header, &rows)
}

fn row(s: &VncSession, now: Timestamp) -> Vec<String> {
    let status = s.status.clone().unwrap_or_default();
    let phase = status.phase;
    // Only a Ready URL has a countdown worth showing; the others no longer open anything.
    let expires = if phase == Some(Phase::Ready) {
        status.url_expires_at.as_ref().map(|t| t.0)
    } else {
        None
    };
    let reason = status
        .ready_condition()
        .map(|c| c.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "-".to_owned());
    vec![
        s.metadata.name.clone().unwrap_or_default(),
        s.spec.instance_id.clone(),
        phase.map_or("Pending", Phase::as_str).to_owned(),
        left_cell(expires, now),
        reason,
        s.metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| age(t.0, now)),
    ]
}

/// `kubectl vnc list [-A]`.
pub async fn execute(
    target: &Target,
    all_namespaces: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let namespace = (!all_namespaces).then_some(target.namespace.as_str());
    let sessions = fetch(&target.client, namespace).await?;
    if sessions.is_empty() {
        match namespace {
            Some(ns) => writeln!(err, "No VncSessions found in namespace {ns:?}.")?,
            None => writeln!(err, "No VncSessions found.")?,
        }
        return Ok(());
    }
    write!(
        out,
        "{}",
        render(&sessions, all_namespaces, Timestamp::now())
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::mock::{self, Step};
    use serde_json::{Value, json};

    const NOW: &str = "2026-11-26T08:00:03Z";

    fn session(name: &str, ns: &str, status: Value) -> VncSession {
        let mut obj = mock::session_json(name, "1", status);
        obj["metadata"]["namespace"] = json!(ns);
        serde_json::from_value(obj).unwrap()
    }

    fn ready() -> Value {
        json!({"phase": "Ready", "urlExpiresAt": "2026-11-26T08:00:15Z",
               "conditions": [{"type": "Ready", "status": "True", "reason": "UrlIssued",
                               "message": "m", "lastTransitionTime": "2026-11-26T08:00:00Z"}]})
    }

    fn failed() -> Value {
        json!({"phase": "Failed", "urlExpiresAt": "2026-11-26T08:00:15Z",
               "conditions": [{"type": "Ready", "status": "False", "reason": "CredentialsNotFound",
                               "message": "m", "lastTransitionTime": "2026-11-26T08:00:00Z"}]})
    }

    #[test]
    fn the_table_shows_phase_seconds_left_reason_and_age() {
        let sessions = vec![
            session("web", "team-a", failed()),
            session("db-1", "team-a", ready()),
            session("new", "team-a", Value::Null),
        ];
        assert_eq!(
            render(&sessions, false, NOW.parse().unwrap()),
            "NAME   INSTANCE                 PHASE     URL EXPIRES IN   REASON                AGE\n\
             db-1   i-bp1hzoinajzkh91h1234   Ready     12s              UrlIssued             60m\n\
             new    i-bp1hzoinajzkh91h1234   Pending   -                -                     60m\n\
             web    i-bp1hzoinajzkh91h1234   Failed    -                CredentialsNotFound   60m\n"
        );
    }

    #[test]
    fn all_namespaces_adds_the_namespace_first() {
        let sessions = vec![
            session("db-1", "team-b", ready()),
            session("db-1", "team-a", ready()),
        ];
        let text = render(&sessions, true, NOW.parse().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   NAME   INSTANCE"));
        assert!(lines[1].starts_with("team-a      db-1"));
        assert!(lines[2].starts_with("team-b      db-1"));
    }

    /// `kubectl vnc list` (with `-A` if `all_namespaces`) in team-a against an API server that
    /// answers the one GET with `step`: the result, stdout and stderr.
    async fn list_through(all_namespaces: bool, step: Step) -> (Result<(), Error>, String, String) {
        let (target, mut handle) = mock::target("team-a");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (result, _) = tokio::join!(
            execute(&target, all_namespaces, &mut out, &mut err),
            mock::serve(&mut handle, vec![step])
        );
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (result, text(out), text(err))
    }

    #[tokio::test]
    async fn list_all_namespaces_asks_the_cluster_wide_path() {
        let list = json!({"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSessionList",
                          "metadata": {"resourceVersion": "9"},
                          "items": [mock::session_json("db-1", "3", ready())]});
        let (result, out, _) = list_through(
            true,
            Step::new("GET", "/apis/ecsvnc.dev/v1alpha1/vncsessions").json(200, list),
        )
        .await;
        result.unwrap();
        assert!(out.starts_with("NAMESPACE   NAME"), "{out}");
        assert!(out.contains("team-a      db-1"), "{out}");
    }

    #[tokio::test]
    async fn an_empty_namespace_says_so_on_stderr() {
        let list = json!({"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSessionList",
                          "metadata": {}, "items": []});
        let (result, out, err) = list_through(
            false,
            Step::new("GET", &mock::sessions_path("team-a")).json(200, list),
        )
        .await;
        result.unwrap();
        assert!(out.is_empty());
        assert_eq!(err, "No VncSessions found in namespace \"team-a\".\n");
    }

    #[tokio::test]
    async fn a_missing_crd_is_named_with_the_fix() {
        let (result, ..) = list_through(
            false,
            Step::new("GET", &mock::sessions_path("team-a")).text(404, "404 page not found"),
        )
        .await;
        assert!(matches!(result, Err(Error::CrdMissing)));
    }
}
