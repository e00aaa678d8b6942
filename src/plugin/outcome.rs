//! Whether the operator has served a refresh request, and what its answer means for the user:
//! a URL to open, or the reason there is none and what fixes it. Pure: no I/O, `now` is given.

use jiff::Timestamp;

use super::advice::advice;
use super::refusal::{Refusal, RefusalKind};
use crate::session::crd::{Phase, REFRESH_ANNOTATION, VncSession, VncSessionStatus};
use crate::session::decide::{INVALID_SPEC, Reason};

/// A URL that can open a connection until `url_expires_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ready {
    pub console_url: String,
    pub url_expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The operator has not acted on the request yet.
    Waiting,
    Ready(Ready),
    Refused(Refusal),
}

/// True once the operator has acted on the refresh value `ours`, or on a later value someone
/// else set in the meantime (each value is served once; the operator may skip straight to the
/// newest, and its answer is just as fresh).
pub fn served(session: &VncSession, ours: &str) -> bool {
    let Some(observed) = session
        .status
        .as_ref()
        .and_then(|s| s.observed_refresh.as_deref())
    else {
        return false;
    };
    let current = session
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REFRESH_ANNOTATION))
        .map(String::as_str);
    observed == ours || (current.is_some_and(|c| c != ours) && current == Some(observed))
}

/// What the session says about the request `ours` at `now`.
pub fn verdict(session: &VncSession, ours: &str, now: Timestamp) -> Verdict {
    if served(session, ours) {
        answer(session, now)
    } else if settled(session) {
        Verdict::Refused(refusal(session, now))
    } else {
        Verdict::Waiting
    }
}

/// True in the states where the operator answers no refresh at all: the grant is `Closed`, or
/// its spec is invalid, and the spec has not changed since. Waiting there only runs into the
/// timeout, so the state is the answer.
pub fn settled(session: &VncSession) -> bool {
    let Some(status) = &session.status else {
        return false;
    };
    let current = status.observed_generation.is_some()
        && status.observed_generation == session.metadata.generation;
    let invalid_spec = status.phase == Some(Phase::Failed)
        && status
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == INVALID_SPEC);
    current && (status.phase == Some(Phase::Closed) || invalid_spec)
}

fn answer(session: &VncSession, now: Timestamp) -> Verdict {
    let status = session.status.as_ref();
    if let Some(status) = status
        && status.phase == Some(Phase::Ready)
        && let Some(url) = status.console_url.clone()
    {
        return Verdict::Ready(Ready {
            console_url: url,
            url_expires_at: status.url_expires_at.as_ref().map(|t| t.0),
        });
    }
    Verdict::Refused(refusal(session, now))
}

fn refusal(session: &VncSession, now: Timestamp) -> Refusal {
    let status = session.status.clone().unwrap_or_default();
    let mut refusal = Refusal {
        kind: RefusalKind::NotReady,
        name: session.metadata.name.clone().unwrap_or_default(),
        namespace: session.metadata.namespace.clone().unwrap_or_default(),
        phase: status.phase.map_or("Pending", Phase::as_str).to_owned(),
        reason: status
            .ready_condition()
            .map(|c| c.reason.clone())
            .unwrap_or_default(),
        message: message(&status),
        fix: String::new(),
    };
    let (kind, fix) = advice(&refusal, &status, now);
    refusal.kind = kind;
    refusal.fix = fix;
    refusal
}

fn message(status: &VncSessionStatus) -> String {
    match (&status.last_error, status.ready_condition()) {
        (Some(e), _) if e.code != Reason::Throttled.as_str() => {
            format!("{}: {}", e.code, e.message)
        }
        (_, Some(c)) if !c.message.is_empty() => c.message.clone(),
        (Some(e), None) => e.message.clone(),
        _ => "(no message from the operator)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::error::{EXIT_CLOSED, EXIT_NOT_READY, EXIT_THROTTLED};
    use crate::session::crd::{Condition, LastError};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    const NOW: &str = "2026-11-26T08:00:01Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn session(annotation: &str, edit: impl FnOnce(&mut VncSessionStatus)) -> VncSession {
        let mut s: VncSession = serde_json::from_value(json!({
            "apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
            "metadata": {"name": "db-1", "namespace": "team-a",
                         "annotations": {REFRESH_ANNOTATION: annotation}},
            "spec": {"regionId": "cn-hangzhou", "instanceId": "i-bp1abc"}
        }))
        .unwrap();
        let mut status = VncSessionStatus::default();
        edit(&mut status);
        s.status = Some(status);
        s
    }

    /// A session whose answer to refresh "mine" is `phase`, with the rest of the status from `edit`.
    fn answered(phase: Phase, edit: impl FnOnce(&mut VncSessionStatus)) -> VncSession {
        session("mine", |st| {
            st.observed_refresh = Some("mine".into());
            st.phase = Some(phase);
            edit(st);
        })
    }

    fn last_error(code: &str, message: &str) -> Option<LastError> {
        Some(LastError {
            code: code.into(),
            message: message.into(),
        })
    }

    /// What `open` says to refresh "mine" on `s`, which must be a refusal.
    fn refusal_of(s: &VncSession) -> Refusal {
        refused(verdict(s, "mine", now()))
    }

    fn condition(reason: &str, message: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Time(now()),
            observed_generation: Some(1),
        }
    }

    fn refused(v: Verdict) -> Refusal {
        match v {
            Verdict::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_older_answer_is_not_ours() {
        let s = session("mine", |st| {
            st.observed_refresh = Some("earlier".into());
            st.phase = Some(Phase::Ready);
            st.console_url = Some("https://console/?vncUrl=old".into());
        });
        assert!(!served(&s, "mine"));
        assert_eq!(verdict(&s, "mine", now()), Verdict::Waiting);
        let fresh = session("mine", |_| {});
        assert_eq!(verdict(&fresh, "mine", now()), Verdict::Waiting);
    }

    #[test]
    fn a_later_request_served_in_our_place_counts() {
        let s = session("theirs", |st| st.observed_refresh = Some("theirs".into()));
        assert!(served(&s, "mine"));
        // ...but not while the operator still works on the later one.
        let s = session("theirs", |st| st.observed_refresh = Some("older".into()));
        assert!(!served(&s, "mine"));
    }

    #[test]
    fn ready_hands_over_the_url_and_its_expiry() {
        let s = answered(Phase::Ready, |st| {
            st.console_url = Some(
                "https://console/?vncUrl=wss%3A%2F%2Fx&instanceId=i-bp1abc&isWindows=false".into(),
            );
            st.url_expires_at = Some(Time("2026-11-26T08:00:15Z".parse().unwrap()));
        });
        assert_eq!(
            verdict(&s, "mine", now()),
            Verdict::Ready(Ready {
                console_url:
                    "https://console/?vncUrl=wss%3A%2F%2Fx&instanceId=i-bp1abc&isWindows=false"
                        .into(),
                url_expires_at: Some("2026-11-26T08:00:15Z".parse().unwrap()),
            })
        );
    }

    #[test]
    fn failed_with_a_wrong_instance_points_at_the_spec() {
        let s = answered(Phase::Failed, |st| {
            st.last_error = last_error(
                "InvalidInstanceId.NotFound",
                "The specified InstanceId does not exist.",
            );
            st.conditions = vec![condition("IssueFailed", "InvalidInstanceId.NotFound: ...")];
        });
        let r = refusal_of(&s);
        assert_eq!(r.kind, RefusalKind::Failed);
        assert_eq!(r.reason, "IssueFailed");
        assert_eq!(
            r.message,
            "InvalidInstanceId.NotFound: The specified InstanceId does not exist."
        );
        assert_eq!(
            r.fix,
            "check spec.instanceId and spec.regionId: `kubectl edit vncsession db-1 -n team-a`"
        );
        assert_eq!(
            r.to_string(),
            "vncsession \"db-1\" in namespace \"team-a\" is Failed\n  reason:  IssueFailed\n  \
             message: InvalidInstanceId.NotFound: The specified InstanceId does not exist.\n  \
             fix:     check spec.instanceId and spec.regionId: `kubectl edit vncsession db-1 -n team-a`"
        );
    }

    #[test]
    fn failed_fixes_follow_the_code() {
        let fix = |code: &str, refreshable: bool| {
            let s = answered(Phase::Failed, |st| {
                st.refreshable = refreshable;
                st.last_error = last_error(code, "m");
            });
            refusal_of(&s).fix
        };
        assert!(fix("CredentialsNotFound", false).contains("spec.credentialsRef"));
        assert!(fix("SignatureDoesNotMatch", false).contains("AccessKey"));
        assert!(fix("Forbidden.RAM", false).contains("ecs:DescribeInstanceVncUrl"));
        assert!(fix("IncorrectInstanceStatus", true).contains("must be Running"));
        assert!(fix("InvalidSpec", false).contains("kubectl edit vncsession db-1 -n team-a"));
        assert!(fix("InternalError", true).starts_with("a retry may help"));
        assert!(fix("SomethingNew", false).starts_with("a retry will not help"));
    }

    #[test]
    fn throttled_says_when_the_operator_tries_again() {
        let s = answered(Phase::Pending, |st| {
            st.retry_at = Some(Time("2026-11-26T08:00:21Z".parse().unwrap()));
            st.last_error = last_error("Throttled", "at most 30 console URLs per minute");
            st.conditions = vec![condition(
                "Throttled",
                "at most 30 console URLs per minute for i-bp1abc; the next one is issued at 2026-11-26T08:00:21Z",
            )];
        });
        let r = refusal_of(&s);
        assert_eq!(r.kind, RefusalKind::Throttled);
        assert_eq!(r.kind.exit_code(), EXIT_THROTTLED);
        assert_eq!(r.phase, "Pending");
        assert!(
            r.message
                .starts_with("at most 30 console URLs per minute for i-bp1abc")
        );
        assert!(
            r.fix.contains("at 2026-11-26T08:00:21Z (in 20 s)"),
            "{}",
            r.fix
        );
    }

    #[test]
    fn ecs_throttling_in_a_failure_is_throttled_too() {
        let s = answered(Phase::Failed, |st| {
            st.refreshable = true;
            st.last_error = last_error(
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
            st.conditions = vec![condition("Throttled", "Throttling.User: ...")];
        });
        let r = refusal_of(&s);
        assert_eq!(r.kind, RefusalKind::Throttled);
        assert_eq!(
            r.message,
            "Throttling.User: Request was denied due to user flow control."
        );
        assert!(r.fix.contains("when a slot frees"));
    }

    #[test]
    fn closed_says_the_ttl_passed() {
        let s = answered(Phase::Closed, |st| {
            st.conditions = vec![condition(
                "Closed",
                "the grant's ttl of 8h has passed; no more console URLs",
            )];
        });
        let r = refusal_of(&s);
        assert_eq!(r.kind, RefusalKind::Closed);
        assert_eq!(r.kind.exit_code(), EXIT_CLOSED);
        assert_eq!(r.reason, "Closed");
        assert_eq!(
            r.message,
            "the grant's ttl of 8h has passed; no more console URLs"
        );
        assert!(r.fix.contains("raise spec.ttl"));
    }

    #[test]
    fn closed_and_invalid_grants_are_the_answer_without_waiting() {
        let closed = |generation: i64| {
            let mut s = session("mine", |st| {
                st.observed_refresh = Some("earlier".into());
                st.observed_generation = Some(1);
                st.phase = Some(Phase::Closed);
            });
            s.metadata.generation = Some(generation);
            s
        };
        assert!(settled(&closed(1)));
        let r = refused(verdict(&closed(1), "mine", now()));
        assert_eq!(r.kind, RefusalKind::Closed);
        // A spec change (a longer ttl, say) is the operator's to judge: wait for it.
        assert!(!settled(&closed(2)));
        assert_eq!(verdict(&closed(2), "mine", now()), Verdict::Waiting);

        let invalid = session("mine", |st| {
            st.observed_generation = Some(1);
            st.phase = Some(Phase::Failed);
            st.last_error = last_error("InvalidSpec", "spec.ttl: not a duration");
        });
        let mut invalid = invalid;
        invalid.metadata.generation = Some(1);
        let r = refusal_of(&invalid);
        assert_eq!(r.kind, RefusalKind::Failed);
        assert!(r.fix.starts_with("fix the spec"));
        // Other failures answer refreshes: wait for ours.
        let retryable = session("mine", |st| {
            st.observed_generation = Some(1);
            st.phase = Some(Phase::Failed);
            st.refreshable = true;
        });
        assert!(!settled(&retryable));
    }

    #[test]
    fn a_url_that_expired_on_the_way_asks_to_try_again() {
        let s = answered(Phase::UrlExpired, |st| {
            st.refreshable = true;
            st.conditions = vec![condition(
                "UrlExpired",
                "the console URL no longer opens connections",
            )];
        });
        let r = refusal_of(&s);
        assert_eq!(r.kind, RefusalKind::NotReady);
        assert_eq!(r.kind.exit_code(), EXIT_NOT_READY);
        assert!(r.fix.contains("kubectl vnc open db-1 -n team-a"));
        // Ready without a URL is not a URL either.
        let s = answered(Phase::Ready, |_| {});
        assert_eq!(refusal_of(&s).kind, RefusalKind::NotReady);
    }
}
