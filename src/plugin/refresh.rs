//! Asking for a new URL: a fresh `ecsvnc.dev/refresh` value, set with a metadata-only merge patch.

use std::io::Write;

use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::connect::Target;
use super::error::{Error, Op};
use crate::session::crd::{REFRESH_ANNOTATION, VncSession};

/// A value no one has set before: the time to the millisecond (readable in `kubectl get -o yaml`)
/// and a random suffix (two requests in the same millisecond still differ).
pub fn new_value(now: Timestamp) -> String {
    let suffix: String = (0..6)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("{}-{suffix}", now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

/// Sets the annotation to `value` and returns the object as stored (its resourceVersion is where
/// a watch for the answer starts).
pub async fn request(
    api: &Api<VncSession>,
    namespace: &str,
    name: &str,
    value: &str,
) -> Result<VncSession, Error> {
    let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(
            |e| match Op::sessions("patch", namespace, Some(name)).error(e) {
                Error::Forbidden { .. } => Error::PatchForbidden {
                    namespace: namespace.to_owned(),
                },
                other => other,
            },
        )
}

/// `kubectl vnc refresh NAME`: the value on stdout, what happens next on stderr.
pub async fn execute(
    target: &Target,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let api: Api<VncSession> = Api::namespaced(target.client.clone(), &target.namespace);
    let value = new_value(Timestamp::now());
    request(&api, &target.namespace, name, &value).await?;
    writeln!(out, "{value}")?;
    writeln!(
        err,
        "refresh requested for vncsession {name:?}; the operator issues a new URL \
         (see `kubectl vnc status {name} -n {ns}`)",
        ns = target.namespace
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::mock::{self, Seen, Step};
    use serde_json::Value;

    /// `kubectl vnc refresh NAME -n team-a` against an API server that answers the one PATCH
    /// with `code` and `body`: the result, stdout, stderr and the request it saw.
    async fn refresh_answered(
        name: &str,
        code: u16,
        body: Value,
    ) -> (Result<(), Error>, String, String, Vec<Seen>) {
        let (target, mut api) = mock::target("team-a");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (result, seen) = tokio::join!(
            execute(&target, name, &mut out, &mut err),
            mock::serve(
                &mut api,
                vec![Step::new("PATCH", &mock::session_path("team-a", name)).json(code, body)]
            )
        );
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (result, text(out), text(err), seen)
    }

    #[test]
    fn values_are_timestamped_and_unique() {
        let now: Timestamp = "2026-11-26T08:00:00.123456Z".parse().unwrap();
        let a = new_value(now);
        let b = new_value(now);
        assert!(a.starts_with("2026-11-26T08:00:00.123Z-"), "{a}");
        assert_eq!(a.len(), "2026-11-26T08:00:00.123Z-".len() + 6);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn refresh_merge_patches_only_the_annotation() {
        let (result, out, err, seen) =
            refresh_answered("db-1", 200, mock::session_json("db-1", "5", Value::Null)).await;
        result.unwrap();
        let body = &seen[0].body;
        let value = body["metadata"]["annotations"][REFRESH_ANNOTATION]
            .as_str()
            .unwrap();
        assert_eq!(
            *body,
            json!({"metadata": {"annotations": {REFRESH_ANNOTATION: value}}})
        );
        assert_eq!(seen[0].content_type, "application/merge-patch+json");
        assert_eq!(out, format!("{value}\n"));
        assert!(err.contains("refresh requested"));
    }

    #[tokio::test]
    async fn no_right_to_patch_names_the_annotation_and_the_edit_role() {
        let forbidden = serde_json::json!({"kind": "Status", "status": "Failure",
            "reason": "Forbidden", "code": 403,
            "message": "vncsessions.ecsvnc.dev \"db-1\" is forbidden: User \"bob\" cannot patch"});
        let (result, ..) = refresh_answered("db-1", 403, forbidden).await;
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), crate::plugin::error::EXIT_FORBIDDEN);
        let text = err.to_string();
        assert!(
            text.starts_with("you may not patch vncsessions.ecsvnc.dev in namespace \"team-a\": "),
            "{text}"
        );
        for needle in [
            "ecsvnc.dev/refresh annotation",
            "needs `patch` on vncsessions",
            "`edit` role",
            "kubectl auth can-i patch vncsessions.ecsvnc.dev -n team-a",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
    }

    #[tokio::test]
    async fn refresh_of_a_missing_session_is_not_found() {
        let (result, ..) = refresh_answered("nope", 404, mock::not_found("nope")).await;
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "vncsession \"nope\" not found in namespace \"team-a\": list the sessions with `kubectl vnc list -n team-a`"
        );
    }
}
