//! What fixes a refusal: from the phase, the `Ready` condition's reason and the error code, the
//! kind of refusal and the one thing to do next, worded with the commands to run. Pure.

use jiff::Timestamp;

use super::refusal::{Refusal, RefusalKind};
use crate::session::crd::{Phase, VncSessionStatus};
use crate::session::decide::{INVALID_SPEC, Reason};

/// The kind of refusal and the fix, from the phase, reason and error code.
pub fn advice(r: &Refusal, status: &VncSessionStatus, now: Timestamp) -> (RefusalKind, String) {
    let (name, ns) = (&r.name, &r.namespace);
    let edit = format!("kubectl edit vncsession {name} -n {ns}");
    let again = format!("kubectl vnc open {name} -n {ns}");
    let code = status
        .last_error
        .as_ref()
        .map(|e| e.code.as_str())
        .unwrap_or_default();

    if r.reason == Reason::Throttled.as_str() {
        let when = match status.retry_at.as_ref().map(|t| t.0) {
            Some(at) => {
                let secs = at.duration_since(now).as_secs().max(0);
                format!("at {} (in {secs} s)", crate::session::expiry::rfc3339(at))
            }
            None => "when a slot frees".to_owned(),
        };
        return (
            RefusalKind::Throttled,
            format!(
                "too many console URLs for this instance in the last minute; the operator issues this one by itself {when}: \
                 wait for it with `kubectl vnc status {name} -n {ns}`, or run `{again}` after that"
            ),
        );
    }

    match status.phase {
        Some(Phase::Closed) => (
            RefusalKind::Closed,
            format!(
                "the grant's ttl has passed: raise spec.ttl (`{edit}`) or create a new VncSession"
            ),
        ),
        Some(Phase::Failed) => (RefusalKind::Failed, failed_fix(code, status, &edit, &again)),
        Some(Phase::UrlExpired | Phase::Expired) => (
            RefusalKind::NotReady,
            format!(
                "the URL expired before it reached you (a slow watch, or this machine's clock is off): run `{again}` again"
            ),
        ),
        _ => (
            RefusalKind::NotReady,
            format!("see `kubectl vnc status {name} -n {ns}` and the operator's logs"),
        ),
    }
}

fn failed_fix(code: &str, status: &VncSessionStatus, edit: &str, again: &str) -> String {
    match code {
        "CredentialsNotFound" => "create or fix the Secret named in spec.credentialsRef (same namespace, keys \
             accessKeyId and accessKeySecret), or give the operator its own credentials; \
             the operator tries again when the Secret changes"
            .to_owned(),
        INVALID_SPEC => format!("fix the spec: `{edit}`"),
        "InvalidAccessKeyId.NotFound" | "SignatureDoesNotMatch" | "InvalidSecurityToken.Expired"
        | "InvalidSecurityToken.MismatchWithAccessKey" => "the AccessKey in the credentials Secret is wrong, disabled or expired: update the Secret; \
             the operator tries again when it changes"
            .to_owned(),
        "InvalidInstanceId.NotFound" | "InvalidRegionId.NotFound" | "InvalidRegionInstance" => {
            format!("check spec.instanceId and spec.regionId: `{edit}`")
        }
        "IncorrectInstanceStatus" | "InstanceNotReady" => {
            format!("the instance must be Running: start it, then run `{again}`")
        }
        c if c.starts_with("Forbidden") => format!(
            "the AccessKey's RAM user may not call ecs:DescribeInstanceVncUrl on this instance: grant it, then run `{again}`"
        ),
        _ if status.refreshable => {
            format!("a retry may help: run `{again}` (the operator also retries by itself)")
        }
        _ => format!(
            "a retry will not help until the spec or the credentials change: see the message, then `{edit}`"
        ),
    }
}
