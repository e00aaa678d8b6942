//! `kubectl vnc status NAME`: one session in words: where it stands, how long its URL and its
//! console connection last, what went wrong, and what the operator said about it lately. The
//! URL itself is not shown (`open` is for that).

use std::fmt::Write as _;
use std::io::Write;

use jiff::Timestamp;
use kube::Api;

use super::connect::Target;
use super::error::{Error, Op};
use super::events::{self, EventLine, Recent};
use super::format::{age, whole_seconds_left};
use super::table;
use super::terminal::clean;
use crate::session::conditions;
use crate::session::crd::{Phase, VncSession, VncSessionSpec, VncSessionStatus};
use crate::session::expiry::rfc3339;

/// How many Events the view shows.
const EVENTS: usize = 10;

pub async fn execute(target: &Target, name: &str, out: &mut dyn Write) -> Result<(), Error> {
    let api: Api<VncSession> = Api::namespaced(target.client.clone(), &target.namespace);
    let session = api
        .get(name)
        .await
        .map_err(|e| Op::sessions("get", &target.namespace, Some(name)).error(e))?;
    let recent = events::recent(&target.client, &session, EVENTS).await;
    write!(out, "{}", render(&session, &recent, Timestamp::now()))?;
    Ok(())
}

/// The summary as text: the fields, the recent Events, and how to get a new URL when there is
/// none.
pub fn render(session: &VncSession, recent: &Recent, now: Timestamp) -> String {
    let status = session.status.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let ns = session.metadata.namespace.clone().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![("Name", name.clone()), ("Namespace", ns.clone())];
    fields.extend(state_fields(&session.spec, &status));
    fields.extend(timing_fields(&status, now));
    fields.extend(attempt_fields(&session.spec, &status, now));

    let mut text = field_lines(&fields);
    text.push_str(&events_section(recent, now));
    let phase = status.phase;
    let (name, ns) = (clean(&name), clean(&ns));
    match phase {
        Some(Phase::Ready | Phase::Closed) => {}
        // Nothing a refresh can do: `open` would only repeat the failure.
        Some(Phase::Failed) if !status.refreshable => {
            text.push_str(
                "\nNot refreshable: change the spec or its credentials (see Last error).\n",
            );
        }
        _ => {
            let _ = writeln!(text, "\nA new URL: kubectl vnc open {name} -n {ns}");
        }
    }
    text
}

/// The instance, the phase and the conditions.
fn state_fields(spec: &VncSessionSpec, status: &VncSessionStatus) -> Vec<(&'static str, String)> {
    let os = match spec.is_windows.or(status.is_windows) {
        Some(true) => " (Windows)",
        Some(false) => " (Linux)",
        None => "",
    };
    let mut fields = vec![
        (
            "Instance",
            format!("{} in {}{os}", spec.instance_id, spec.region_id),
        ),
        (
            "Phase",
            status.phase.map_or("Pending", Phase::as_str).to_owned(),
        ),
    ];
    // The three conditions Git tooling reads; Ready stays True at rest, UrlValid says whether
    // the URL opens connections now, Stalled whether a person must act.
    for type_ in [
        conditions::READY,
        conditions::URL_VALID,
        conditions::STALLED,
    ] {
        if let Some(c) = status.conditions.iter().find(|c| c.type_ == type_) {
            fields.push((type_, format!("{} ({}): {}", c.status, c.reason, c.message)));
        }
    }
    fields
}

/// How long the URL opens connections and how long a connection opened in time lasts.
fn timing_fields(status: &VncSessionStatus, now: Timestamp) -> Vec<(&'static str, String)> {
    let url = match status.url_expires_at.as_ref().map(|t| t.0) {
        None => "none issued yet".to_owned(),
        Some(at) => {
            match whole_seconds_left(at, now).filter(|_| status.phase == Some(Phase::Ready)) {
                Some(secs) => format!("{secs} s left to open a connection (until {})", rfc3339(at)),
                None => format!("no longer opens connections (since {})", rfc3339(at)),
            }
        }
    };
    let mut fields = vec![("URL", url)];
    if let Some(at) = status.session_expires_at.as_ref().map(|t| t.0) {
        let keepalive = match whole_seconds_left(at, now) {
            Some(secs) => format!(
                "{secs} s left at most for a connection opened in time (until {})",
                rfc3339(at)
            ),
            None => format!("over (since {})", rfc3339(at)),
        };
        fields.push(("Session", keepalive));
    }
    fields
}

/// Whether a refresh helps, what went wrong last and when it is retried, and the grant's terms.
fn attempt_fields(
    spec: &VncSessionSpec,
    status: &VncSessionStatus,
    now: Timestamp,
) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("Refreshable", status.refreshable.to_string()),
        (
            "Last error",
            status.last_error.as_ref().map_or_else(
                || "none".to_owned(),
                |e| format!("{}: {}", e.code, e.message),
            ),
        ),
    ];
    if let Some(at) = status.retry_at.as_ref().map(|t| t.0) {
        let secs = at.duration_since(now).as_secs().max(0);
        fields.push(("Retry at", format!("{} (in {secs} s)", rfc3339(at))));
    }
    fields.push(("URLs issued", issued_count(status).to_string()));
    if let Some(why) = &spec.reason {
        fields.push(("Reason", why.clone()));
    }
    if let Some(ttl) = &spec.ttl {
        fields.push(("TTL", ttl.clone()));
    }
    fields
}

/// `key:` and value, the values lined up in one column.
fn field_lines(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 3;
    let mut text = String::new();
    // Every value holds the cluster's text (spec.reason, condition messages, lastError ...).
    for (key, value) in fields {
        let _ = writeln!(text, "{:width$}{}", format!("{key}:"), clean(value));
    }
    text
}

/// The recent Events as an indented table, or why they are not shown.
fn events_section(recent: &Recent, now: Timestamp) -> String {
    let mut text = "Events:\n".to_owned();
    match recent {
        Recent::Listed(lines) if lines.is_empty() => text.push_str("  none\n"),
        Recent::Listed(lines) => {
            for line in
                table::render(&["AGE", "TYPE", "REASON", "MESSAGE"], &rows(lines, now)).lines()
            {
                let _ = writeln!(text, "  {line}");
            }
        }
        Recent::Unavailable(why) => {
            let _ = writeln!(text, "  not shown: {}", clean(why));
        }
    }
    text
}

fn issued_count(status: &VncSessionStatus) -> u32 {
    if status.issued_at.is_some() {
        status.refresh_count.saturating_add(1)
    } else {
        0
    }
}

fn rows(lines: &[EventLine], now: Timestamp) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| {
            let when = l.at.map_or_else(|| "-".to_owned(), |at| age(at, now));
            let note = if l.count > 1 {
                format!("{} (x{})", l.note, l.count)
            } else {
                l.note.clone()
            };
            vec![when, l.type_.clone(), l.reason.clone(), note]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::mock::{self, Step};
    use serde_json::json;

    const NOW: &str = "2026-11-26T08:00:03Z";

    /// db-1 at version 7 with `status`.
    fn session_with(status: serde_json::Value) -> VncSession {
        serde_json::from_value(mock::session_json("db-1", "7", status)).unwrap()
    }

    fn ready_session() -> VncSession {
        let mut session = session_with(json!({
            "phase": "Ready", "isWindows": false, "refreshable": false,
            "consoleUrl": "https://console/?vncUrl=wss%3A%2F%2Fsecret",
            "issuedAt": "2026-11-26T08:00:00Z",
            "urlExpiresAt": "2026-11-26T08:00:15Z",
            "sessionExpiresAt": "2026-11-26T08:05:15Z",
            "refreshCount": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "UrlIssued",
                "message": "console URL issued for i-bp1hzoinajzkh91h1234; it opens a connection until 2026-11-26T08:00:15Z",
                "lastTransitionTime": "2026-11-26T08:00:00Z"}]
        }));
        session.spec.reason = Some("INC-42 disk full".into());
        session
    }

    /// The one Event shown, seen once at 08:00:00.
    fn one_event(type_: &str, reason: &str, note: &str) -> Recent {
        Recent::Listed(vec![EventLine {
            at: Some("2026-11-26T08:00:00Z".parse().unwrap()),
            type_: type_.into(),
            reason: reason.into(),
            note: note.into(),
            count: 1,
        }])
    }

    #[test]
    fn a_ready_session_shows_both_countdowns_and_never_the_url() {
        let events = one_event(
            "Normal",
            "RefreshRequested",
            "issued a new console URL for i-bp1hzoinajzkh91h1234 on request",
        );
        let text = render(&ready_session(), &events, NOW.parse().unwrap());
        assert_eq!(
            text,
            "Name:         db-1\n\
             Namespace:    team-a\n\
             Instance:     i-bp1hzoinajzkh91h1234 in cn-hangzhou (Linux)\n\
             Phase:        Ready\n\
             Ready:        True (UrlIssued): console URL issued for i-bp1hzoinajzkh91h1234; it opens a connection until 2026-11-26T08:00:15Z\n\
             URL:          12 s left to open a connection (until 2026-11-26T08:00:15Z)\n\
             Session:      312 s left at most for a connection opened in time (until 2026-11-26T08:05:15Z)\n\
             Refreshable:  false\n\
             Last error:   none\n\
             URLs issued:  3\n\
             Reason:       INC-42 disk full\n\
             Events:\n  \
               AGE   TYPE     REASON             MESSAGE\n  \
               3s    Normal   RefreshRequested   issued a new console URL for i-bp1hzoinajzkh91h1234 on request\n"
        );
        assert!(!text.contains("vncUrl"));
    }

    #[test]
    fn a_failed_session_shows_the_error_retry_and_what_to_do() {
        let session = session_with(json!({"phase": "Failed", "refreshable": true,
                   "urlExpiresAt": "2026-11-26T07:00:15Z",
                   "lastError": {"code": "InternalError", "message": "The request processing has failed."},
                   "retryAt": "2026-11-26T08:00:07Z"}));
        let text = render(
            &session,
            &Recent::Unavailable("you may not list events.events.k8s.io".into()),
            NOW.parse().unwrap(),
        );
        assert!(text.contains("Phase:        Failed\n"), "{text}");
        assert!(
            text.contains(
                "URL:          no longer opens connections (since 2026-11-26T07:00:15Z)\n"
            ),
            "{text}"
        );
        assert!(text.contains("Refreshable:  true\n"), "{text}");
        assert!(
            text.contains("Last error:   InternalError: The request processing has failed.\n"),
            "{text}"
        );
        assert!(
            text.contains("Retry at:     2026-11-26T08:00:07Z (in 4 s)\n"),
            "{text}"
        );
        assert!(text.contains("  not shown: you may not list events.events.k8s.io\n"));
        assert!(text.ends_with("\nA new URL: kubectl vnc open db-1 -n team-a\n"));
    }

    #[test]
    fn a_grant_no_refresh_can_help_is_not_sent_to_open() {
        let session = session_with(json!({"phase": "Failed", "refreshable": false,
                   "lastError": {"code": "InvalidAccessKeyId.NotFound", "message": "no such key"}}));
        let text = render(&session, &Recent::Listed(Vec::new()), NOW.parse().unwrap());
        assert!(!text.contains("kubectl vnc open"), "{text}");
        assert!(
            text.ends_with(
                "\nNot refreshable: change the spec or its credentials (see Last error).\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn control_characters_from_the_cluster_never_reach_the_terminal() {
        let mut session = session_with(json!({"phase": "Failed", "refreshable": true,
                   "lastError": {"code": "InternalError\u{1b}[8m",
                                 "message": "fine\rFAKE: all good\u{1b}]0;title\u{07}"},
                   "conditions": [{"type": "Ready", "status": "False", "reason": "IssueFailed",
                       "message": "line one\nStalled:      False\u{202E}txet",
                       "lastTransitionTime": "2026-11-26T08:00:00Z"}]}));
        session.spec.reason = Some("INC-7 磁盘已满\u{9b}2J\u{2066}x\u{7f}".into());
        let events = one_event("Warning\u{1b}[1m", "IssueFailed\t", "a\nb\u{8}\u{8}c");
        let text = render(&session, &events, NOW.parse().unwrap());
        let bad = |c: char| {
            (c.is_control() && c != '\n')
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        };
        assert!(!text.chars().any(bad), "{text:?}");
        assert!(
            text.contains("Reason:       INC-7 磁盘已满\u{FFFD}2J\u{FFFD}x\u{FFFD}\n"),
            "{text}"
        );
        assert!(
            text.contains("Last error:   InternalError\u{FFFD}[8m: fine FAKE: all good"),
            "{text}"
        );
        assert!(
            text.contains("line one Stalled:      False\u{FFFD}txet\n"),
            "{text}"
        );
        assert!(!text.contains("\nStalled:"), "a forged line: {text}");
        assert!(text.contains("a b\u{FFFD}\u{FFFD}c"), "{text}");
        let unavailable = render(
            &session,
            &Recent::Unavailable("list failed: HTTP 500: \u{1b}[31mboom".into()),
            NOW.parse().unwrap(),
        );
        assert!(unavailable.contains("  not shown: list failed: HTTP 500: \u{FFFD}[31mboom\n"));
    }

    /// `kubectl vnc status NAME -n team-a` against an API server that answers `steps`.
    async fn status_through(name: &str, steps: Vec<Step>) -> (Result<(), Error>, String) {
        let (target, mut handle) = mock::target("team-a");
        let mut out = Vec::new();
        let (result, _) = tokio::join!(
            execute(&target, name, &mut out),
            mock::serve(&mut handle, steps)
        );
        (result, String::from_utf8(out).unwrap())
    }

    #[tokio::test]
    async fn status_reads_the_session_then_its_events() {
        let events = json!({"apiVersion": "events.k8s.io/v1", "kind": "EventList",
                            "metadata": {}, "items": []});
        let (result, out) = status_through(
            "db-1",
            vec![
                Step::new("GET", &mock::session_path("team-a", "db-1"))
                    .json(200, serde_json::to_value(ready_session()).unwrap()),
                Step::new("GET", "/apis/events.k8s.io/v1/namespaces/team-a/events")
                    .json(200, events),
            ],
        )
        .await;
        result.unwrap();
        assert!(out.starts_with("Name:         db-1\n"), "{out}");
        assert!(out.contains("Events:\n  none\n"), "{out}");
    }

    #[tokio::test]
    async fn status_of_a_missing_session_is_not_found() {
        let (result, _) = status_through(
            "ghost",
            vec![
                Step::new("GET", &mock::session_path("team-a", "ghost"))
                    .json(404, mock::not_found("ghost")),
            ],
        )
        .await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
    }
}
